# Asked by `lmdrive doctor`: the interpreter's version and, for each module
# named as import:<name> or look:<name>, whether it imports (or is installed)
# and its version. One JSON object on the original stdout; anything the
# imported packages print goes to stderr.
import importlib
import importlib.util
import json
import os
import sys

out_fd = os.dup(1)
os.dup2(2, 1)
sys.stdout = sys.stderr

report = {
    "version": "%d.%d.%d" % sys.version_info[:3],
    "executable": sys.executable,
    "modules": {},
}


def first_line(e):
    text = str(e).strip().splitlines()
    return "%s: %s" % (type(e).__name__, text[0]) if text else type(e).__name__


for arg in sys.argv[1:]:
    mode, _, name = arg.partition(":")
    info = {}
    try:
        if mode == "import":
            mod = importlib.import_module(name)
            info["imported"] = True
            info["version"] = str(getattr(mod, "__version__", ""))
            if name == "torch":
                info["cuda"] = mod.version.cuda or ""
                if info["cuda"] and mod.cuda.is_available():
                    info["cuda_gpus"] = mod.cuda.device_count()
        elif importlib.util.find_spec(name) is None:
            info["error"] = "not installed"
        else:
            try:
                from importlib.metadata import version

                info["version"] = version(name)
            except Exception:
                pass
    except BaseException as e:  # an import may raise anything, even SystemExit
        info = {"error": first_line(e)}
    report["modules"][name] = info

with os.fdopen(out_fd, "w") as out:
    out.write(json.dumps(report))
