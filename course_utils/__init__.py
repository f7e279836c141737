"""Small helpers shared by the course's notebooks: device, seeding, mode, data, plots, training, grading.

Names load from their module on first use (`from course_utils import mnist` works as before), so that
`import course_utils` costs nothing: the grader's sandboxed kernel imports it for every student.
"""
from importlib import import_module

_MODULE_OF = {
    **dict.fromkeys(("Digits", "DataError", "batches", "data_root", "embedded_mnist", "mnist"), "data"),
    **dict.fromkeys(("describe_device", "get_device", "seed_everything", "set_threads"), "device"),
    **dict.fromkeys(("course_mode", "is_quick", "pick"), "mode"),
    "report": "results",
    **dict.fromkeys(("interpolation_strip", "latent_scatter", "lerp", "plot_losses", "show_grid", "show_rows"), "plot"),
    **dict.fromkeys(("History", "Timer", "epochs"), "train"),
}


def __getattr__(name: str):
    """Import the helper `name` from its module the first time it is asked for."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def setup(seed: int = 0, device: str = "auto") -> "tuple":
    """Notebook preamble: set threads, seed everything, pick the device; print mode and device.

    Returns (device, generator)."""
    from .device import describe_device, get_device, seed_everything, set_threads
    from .mode import course_mode

    set_threads()
    gen = seed_everything(seed)
    dev = get_device(device, verbose=False)
    print(f"mode: {course_mode()} | device: {describe_device(dev)} | seed: {seed}")
    return dev, gen


__all__ = [*_MODULE_OF, "setup"]
