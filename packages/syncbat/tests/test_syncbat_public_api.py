"""The public surface of ``syncbat``: the export list, docstrings, and downward-only imports."""

import inspect
import pkgutil

import syncbat


def test_all_names_resolve_and_are_unique() -> None:
    assert len(set(syncbat.__all__)) == len(syncbat.__all__)
    for name in syncbat.__all__:
        assert hasattr(syncbat, name), name


def test_exported_classes_and_functions_are_documented() -> None:
    for name in syncbat.__all__:
        value = getattr(syncbat, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_syncbat_imports_only_downward() -> None:
    for info in pkgutil.iter_modules(syncbat.__path__, "syncbat."):
        module = __import__(info.name, fromlist=["_"])
        source = inspect.getsource(module)
        for above in ("netbat", "hostbat"):
            assert f"import {above}" not in source, info.name
            assert f"from {above}" not in source, info.name
