#!/usr/bin/env python3
"""Validates SARIF files against the vendored SARIF 2.1.0 schema, offline.

usage: validate.py FILE...

Prints `FILE: ok` or `FILE: invalid: REASON` (one line per error) for each
file. Exit status: 0 when every file is valid, 1 when one is not, 3 when
the jsonschema package is missing.
"""
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    print("validate.py: the jsonschema package is missing: "
          "python3 -m pip install jsonschema (scripts/test.sh does)", file=sys.stderr)
    sys.exit(3)

here = pathlib.Path(__file__).resolve().parent
schema = json.loads((here / "sarif-2.1.0-rtm.5.json").read_text(encoding="utf-8"))
Validator = jsonschema.Draft4Validator
Validator.check_schema(schema)
validator = Validator(schema, format_checker=Validator.FORMAT_CHECKER)

failed = False
for name in sys.argv[1:]:
    try:
        document = json.loads(pathlib.Path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"{name}: invalid: not JSON: {e}")
        failed = True
        continue
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        print(f"{name}: invalid: at {where}: {error.message[:300]}")
    if errors:
        failed = True
    else:
        print(f"{name}: ok")
sys.exit(1 if failed else 0)
