"""Small helpers shared by the course's notebooks: device, seeding, mode, data, plots, training, grading."""
from .data import Digits, DataError, batches, data_root, embedded_mnist, mnist
from .device import describe_device, get_device, seed_everything, set_threads
from .mode import course_mode, is_quick, pick
from .results import report
from .plot import interpolation_strip, latent_scatter, lerp, plot_losses, show_grid, show_rows
from .train import History, Timer, epochs


def setup(seed: int = 0, device: str = "auto") -> "tuple":
    """Notebook preamble: set threads, seed everything, pick the device; print mode and device; return (device, generator)."""
    set_threads()
    gen = seed_everything(seed)
    dev = get_device(device, verbose=False)
    print(f"mode: {course_mode()} | device: {describe_device(dev)} | seed: {seed}")
    return dev, gen


__all__ = [
    "Digits", "DataError", "batches", "data_root", "embedded_mnist", "mnist",
    "describe_device", "get_device", "seed_everything", "set_threads",
    "course_mode", "is_quick", "pick", "report",
    "interpolation_strip", "latent_scatter", "lerp", "plot_losses", "show_grid", "show_rows",
    "History", "Timer", "epochs", "setup",
]
