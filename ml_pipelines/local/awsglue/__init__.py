"""Root of the LOCAL `awsglue` compatibility package (the Glue libraries are not on PyPI).

Put `COMPAT_ROOT` on PYTHONPATH and `import awsglue` resolves to `./awsglue`, a small
implementation of the Glue API on plain PySpark; see its docstring for the subset.
"""

from pathlib import Path

COMPAT_ROOT: Path = Path(__file__).resolve().parent
