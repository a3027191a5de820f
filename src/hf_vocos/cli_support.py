"""What the command line's subcommands share (`cli`, `dataset_vocos`): the error that stops a command, loading the
vocoder from the common options, and their defaults. Imports nothing heavy itself: the vocoder is imported when one
is loaded."""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "DTYPE_CHOICES", "CliError", "load_vocoder"]

DEFAULT_MODEL = "hf-audio/vocos-mel-24khz"
# (the choices of `vocoder.resolve_dtype`, spelled out so that this module does not import the vocoder)
DTYPE_CHOICES = ("float32", "bfloat16", "float16", "auto")


class CliError(Exception):
    """A problem that stops the whole command (bad option, model that cannot load, unwritable output)."""


def load_vocoder(args, bandwidth=None):
    from .vocoder import Vocoder

    try:
        return Vocoder(
            args.model,
            device=args.device,
            dtype=args.dtype,
            bandwidth=bandwidth,
            batch_size=args.batch_size,
            long_seconds=args.long_seconds,
            log_floor=getattr(args, "log_floor", None),
        )
    except (OSError, ValueError, TypeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, OSError):
            message = f"--model {args.model}: cannot load it ({message})"
        elif not message.startswith("--"):
            message = f"--model {args.model}: {message}"
        raise CliError(message) from None
