"""`make mutation` reaches every mechanism: each source file of attention/ and models/ (and the
decoders) is a target of scripts/mutation.py, with test files that exist."""

import importlib.util

from conftest import REPO

spec = importlib.util.spec_from_file_location("mutation_script", REPO / "scripts" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation)


def test_every_mechanism_file_is_a_mutation_target_with_its_tests():
    src = REPO / mutation.SRC
    files = {
        p.relative_to(src).as_posix()
        for folder in ("attention", "models")
        for p in (src / folder).glob("*.py")
        if p.read_text().count("\n") > 1  # not a package docstring alone
    }
    assert files | {"tasks/decoding.py"} == set(mutation.TARGETS)
    missing = [test for tests in mutation.TARGETS.values() for test in tests if not (REPO / test).is_file()]
    assert not missing, missing
