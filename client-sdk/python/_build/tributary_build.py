"""The Python client's PEP 517 build backend, in the tree: it writes the
wheel and the sdist with the standard library only, so ``pip install
./client-sdk/python`` and ``pip wheel`` need nothing from a package index
(setuptools is not fetched). It packages ``tributary_client`` (with its
generated ``_gen`` stubs) and reads name, version, dependencies and the
console script from ``pyproject.toml``."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - older Pythons read the few fields by hand
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tributary_client"
# Fixed timestamps keep the archives reproducible.
EPOCH = (2020, 1, 1, 0, 0, 0)


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = f.read()
    if tomllib is not None:
        return tomllib.loads(data.decode("utf-8"))["project"]
    raise RuntimeError("building tributary-client needs Python 3.11 or later (tomllib)")


def _dist_name(project):
    return project["name"].replace("-", "_")


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3.9')}",
    ]
    lic = project.get("license", {})
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            lines.append(f'Requires-Dist: {dep}; extra == "{extra}"')
    readme = project.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _entry_points(project):
    scripts = project.get("scripts", {})
    if not scripts:
        return None
    return "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())


def _package_files():
    """(path in the archive, path on disk) of every module of the package, sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".pyi", ".typed")):
                full = os.path.join(dirpath, name)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def _write_wheel(wheel_directory, files, project):
    """Writes a py3-none-any wheel of ``files`` ((archive name, bytes) pairs); returns its name."""
    dist = _dist_name(project)
    version = project["version"]
    info = f"{dist}-{version}.dist-info"
    meta = [
        (f"{info}/METADATA", _metadata(project).encode("utf-8")),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tributary_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    entry = _entry_points(project)
    if entry:
        meta.append((f"{info}/entry_points.txt", entry.encode("utf-8")))
    entries = list(files) + meta
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode("utf-8")))
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, EPOCH)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return filename


# -- PEP 517 hooks --------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    files = []
    for name, full in _package_files():
        with open(full, "rb") as f:
            files.append((name, f.read()))
    return _write_wheel(wheel_directory, files, project)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """An editable install: a ``.pth`` file that puts this directory on ``sys.path``."""
    project = _project()
    pth = (ROOT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [(f"_{_dist_name(project)}_editable.pth", pth)], project)


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    filename = f"{base}.tar.gz"
    members = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")), ("README.md", os.path.join(ROOT, "README.md"))]
    members.append(("_build/tributary_build.py", os.path.abspath(__file__)))
    members += _package_files()
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        pkg_info = _metadata(project).encode("utf-8")
        for name, data in [("PKG-INFO", pkg_info)]:
            ti = tarfile.TarInfo(f"{base}/{name}")
            ti.size, ti.mtime, ti.mode = len(data), 1577836800, 0o644
            tar.addfile(ti, io.BytesIO(data))
        for name, full in members:
            with open(full, "rb") as f:
                data = f.read()
            ti = tarfile.TarInfo(f"{base}/{name}")
            ti.size, ti.mtime, ti.mode = len(data), 1577836800, 0o644
            tar.addfile(ti, io.BytesIO(data))
    return filename
