"""The one exception type the library raises for bad input.

Every reader and builder turns what it cannot use into an NNVisError whose message names the file or
layer and the problem, so operators can report it and CLI users see one clear line, not a traceback.
"""


class NNVisError(Exception):
    """Bad or unsupported input: a message a user can act on (names the file/layer and the problem)."""
