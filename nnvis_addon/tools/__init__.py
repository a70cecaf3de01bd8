"""The tools that run outside Blender: the `nnvis` command (`cli`), headless rendering, packaging,
the demo's training and the benchmarks and fuzzers (`bench/`). The extension zip leaves this
package out (blender_manifest.toml); nothing the add-on imports may live here."""
