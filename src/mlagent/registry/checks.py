"""What an uploaded file must look like for its kind, checked without executing it.

A `.skops` model is type-audited here (skops reads its schema, nothing runs): every type it
names must come from scikit-learn, NumPy or SciPy. A pickle cannot be audited without
running it, so it is only ever loaded by the serving worker, a separate resource-limited
process (serving/worker.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import ServiceError

MODEL_SUFFIXES = {".pkl", ".pickle", ".joblib", ".skops", ".tar.gz"}  # .tar.gz: a transformers model
# A transformers model archive (a `save_pretrained` directory, e.g. a fine-tuned model) holds
# weights as safetensors only: pickled weights (.bin, .pt) would run code when loaded.
ARCHIVE_REQUIRED = ("config.json", "model.safetensors")
ARCHIVE_REFUSED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".py")
ARCHIVE_MAX_BYTES = 4 << 30
ARCHIVE_MAX_MEMBERS = 1000
DATA_SUFFIXES = {".csv"}
CODE_SUFFIXES = {".py"}
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")  # module prefixes; never "builtins." (eval, exec...)


def _bad(message: str) -> ServiceError:
    return ServiceError(422, "invalid_file", message, "file", retryable=False)


def suffix_of(filename: str) -> str:
    name = filename.lower()
    return ".tar.gz" if name.endswith(".tar.gz") else Path(name).suffix


def audit_archive(path: Path) -> None:
    """A transformers model archive: plain files at safe relative paths, bounded in size,
    with a config and safetensors weights and nothing that runs code when loaded."""
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as tar:
            members = []
            for i, m in enumerate(tar):
                if i >= ARCHIVE_MAX_MEMBERS:
                    raise _bad(f"The model archive has more than {ARCHIVE_MAX_MEMBERS} entries.")
                members.append(m)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _bad(f"The model file is not a readable .tar.gz archive ({type(exc).__name__}).") from exc
    names, total = set(), 0
    for m in members:
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise _bad(f"The model archive entry {m.name!r} is not a plain file at a relative path.")
        if m.isfile():
            if m.name.lower().endswith(ARCHIVE_REFUSED):
                raise _bad(f"The model archive holds {m.name!r}: weights must be safetensors (pickled weights "
                           "and code are refused).")
            total += m.size
            names.add(str(Path(*parts)) if parts else m.name)
    if total > ARCHIVE_MAX_BYTES:
        raise _bad("The model archive unpacks to more than 4 GiB.")
    missing = [n for n in ARCHIVE_REQUIRED if n not in names]
    if missing:
        raise _bad(f"The model archive lacks {', '.join(missing)} at its top level (a transformers "
                   "save_pretrained directory with safetensors weights).")


def check_name(filename: str, kind: str) -> None:
    suffix = suffix_of(filename)
    allowed = {"model": MODEL_SUFFIXES, "data": DATA_SUFFIXES, "code": CODE_SUFFIXES}.get(kind)
    if allowed is not None and suffix not in allowed:
        raise _bad(f"A {kind} file must end in one of {', '.join(sorted(allowed))}; got {filename!r}.")


def audit_skops(path: Path) -> list[str]:
    """The types a skops file would construct; raises if any is outside the trusted libraries."""
    from skops.io import get_untrusted_types

    try:
        types = get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a malformed archive is the client's mistake
        raise _bad(f"The file is not a readable skops archive ({type(exc).__name__}).") from exc
    refused = [t for t in types if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise _bad("The skops file names types outside scikit-learn/NumPy/SciPy, refused: " + ", ".join(refused))
    return types


def check_content(path: Path, filename: str, kind: str) -> None:
    """Reject content that cannot serve its kind (runs in a worker thread)."""
    suffix = suffix_of(filename)
    if kind == "model" and suffix == ".skops":
        audit_skops(path)
    elif kind == "model" and suffix == ".tar.gz":
        audit_archive(path)
    elif kind == "data":
        import pandas as pd

        try:
            frame = pd.read_csv(path, nrows=5)
        except Exception as exc:  # noqa: BLE001
            raise _bad(f"The data file is not a readable CSV ({exc}).") from exc
        if frame.shape[1] == 0:
            raise _bad("The data file has no columns.")
    elif kind == "code":
        try:
            ast.parse(path.read_bytes(), filename=filename)
        except (SyntaxError, ValueError) as exc:
            raise _bad(f"The training script is not valid Python ({exc}).") from exc
    elif kind == "env":
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad("The environment file must be UTF-8 text (e.g. requirements.txt).") from exc
