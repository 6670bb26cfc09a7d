"""`manage.py create_api_key NAME [--groups a,b]`: prints the key once, stores only its hash."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from routing import keys
from routing.models import ApiKey, ModelGroup


def create(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_one_key_and_stores_only_its_hash(db):
    out, err = create("ci")
    lines = out.splitlines()
    assert len(lines) == 1
    full = lines[0]
    assert full.startswith(keys.KEY_PREFIX)
    row = ApiKey.objects.get(name="ci")
    assert row.key_hash == keys.hash_key(full)
    assert full.startswith(f"{keys.KEY_PREFIX}{row.prefix}-")
    stored = [str(v) for v in ApiKey.objects.values().get().values()]
    assert full not in stored and not any(full[-12:] in v for v in stored)
    assert full not in err and row.prefix in err  # the human message goes to stderr, without the key
    assert list(row.allowed_groups.all()) == [] and row.is_active


def test_each_run_makes_a_different_key(db):
    first, _ = create("a")
    second, _ = create("b")
    assert first != second
    assert ApiKey.objects.count() == 2


def test_groups_restrict_the_key(db):
    a, b, _ = (ModelGroup.objects.create(name=n) for n in ("a", "b", "c"))
    create("ci", "--groups", "a, b", "--rpm", "60", "--max-parallel", "4")
    row = ApiKey.objects.get(name="ci")
    assert set(row.allowed_groups.all()) == {a, b}
    assert (row.rpm, row.tpm, row.max_parallel) == (60, None, 4)


def test_unknown_groups_are_an_error_and_create_nothing(db):
    ModelGroup.objects.create(name="a")
    with pytest.raises(CommandError, match="Unknown model group\\(s\\): nope, zzz"):
        create("ci", "--groups", "a,zzz,nope")
    assert not ApiKey.objects.exists()
