"""Print the include and library directories of the mkl-include/mkl-static wheels.

Used by CMakeLists.txt; works inside pip's isolated build environments, where the
wheels' data files land in a temporary prefix that is not sys.prefix.
"""

import sys
from importlib import metadata


def _locate(distribution: str, filename: str) -> str:
    for f in metadata.files(distribution) or []:
        if f.name == filename:
            return str(f.locate().resolve().parent)
    raise FileNotFoundError(f"{filename} not found in distribution {distribution}")


try:
    print(_locate("mkl-include", "mkl.h") + ";" + _locate("mkl-static", "libmkl_core.a"))
except (metadata.PackageNotFoundError, FileNotFoundError) as e:
    print(e, file=sys.stderr)
    sys.exit(1)
