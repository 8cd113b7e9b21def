#!/usr/bin/env python3
"""Run the ASGE authors' released PyTorch code (KCL-KAI-Lab/ASGE) on ffrepro's data split.

Their files are not part of ffrepro: pass a folder holding Layer.py, VGG8.py, VGG11.py,
Load_Dataset.py and Main.py with --authors. Nothing in that folder is changed (no
__pycache__ either). What this shim changes, and why, is listed in README.md next to it:

  * data: torchvision.datasets.MNIST / FashionMNIST are replaced by ffrepro's prepared
    shards (--data); the "train" set is ffrepro's train rows followed by its val rows,
    the test set is ffrepro's test split;
  * split: torch.utils.data.random_split returns (ffrepro's training subset, ffrepro's val
    split) instead of a random 50,000 / 10,000 split;
  * seed: torch (and random, numpy) are seeded with --seed right after their loader
    returns (the loader itself seeds 42 for the split, which the shim keeps);
  * epochs: the one line `epochs = 100` of Main.py becomes `epochs = N`;
  * device: CPU (torch.cuda.is_available() answers False), --threads torch threads;
  * torchvision: when `import torchvision` fails, a stand-in providing exactly the pieces
    their code uses (see _install_torchvision_standin) is put in sys.modules;
  * optionally (--loader-workers 0) their DataLoaders run without worker processes.

Outputs in --out: their own files (Test_Accuracy.txt, Loss.png, Accuracy.png), log.txt
(their stdout and stderr, teed) and result.json (written atomically, updated during the run).
"""

import argparse
import hashlib
import io
import json
import os
import platform
import random
import re
import sys
import time
import traceback

AUTHOR_FILES = ("Layer.py", "VGG8.py", "VGG11.py", "Load_Dataset.py", "Main.py")
AUTHORS_COMMIT = "78d82a41fbf757d8751b083fa1ab5e3470ea221b"
EPOCHS_LINE = "epochs = 100"

# ---------------------------------------------------------------------------------------
# ffrepro's subset: a port of SeededRandom (Sources/FFEngine/Data/SeededRandom.swift) and
# ShardLoader.subsetRows (Sources/FFEngine/Data/ShardLoader.swift).

MASK64 = (1 << 64) - 1


def _mix(x):
    """SplitMix64 finaliser."""
    z = x & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


class SeededRandom:
    """SeededRandom(seed:stream:) with no coordinates."""

    def __init__(self, seed, stream):
        self.state = _mix((seed & MASK64) ^ _fnv1a64(stream))

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        return _mix(self.state)

    def below(self, bound):
        """Uniform in [0, bound), Lemire's multiply-high with rejection."""
        if bound <= 0:
            raise ValueError("empty range")
        b = bound
        m = self.next() * b
        if (m & MASK64) < b:
            threshold = ((1 << 64) - b) % b
            while (m & MASK64) < threshold:
                m = self.next() * b
        return m >> 64

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def subset_rows(total, count, seed):
    """ShardLoader.subsetRows(total:count:seed:): first `count` of a fixed permutation, ascending."""
    if not 0 < count <= total:
        raise ValueError(f"subset {count} is not within 1...{total}")
    return sorted(SeededRandom(seed, "subset").permutation(total)[:count])


# ---------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors", help="folder with the authors' Layer.py, VGG8.py, VGG11.py, Load_Dataset.py, Main.py")
    ap.add_argument("--data", help="ffrepro prepared dataset folder (index.json + HDF5 shards)")
    ap.add_argument("--dataset", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--epochs", type=int, default=100, help="replaces their hard-coded `epochs = 100` (default 100)")
    ap.add_argument("--subset", type=int, default=None,
                    help="train on ffrepro's subset of this many rows of its train split (default: all 50,000)")
    ap.add_argument("--subset-seed", type=int, default=0, help="seed of ffrepro's subset (ffrepro's --subset-seed)")
    ap.add_argument("--seed", type=int, default=1, help="torch/random/numpy seed set after their loader returns")
    ap.add_argument("--threads", type=int, default=1, help="torch intra- and inter-op threads (and OMP/MKL)")
    ap.add_argument("--loader-workers", choices=["theirs", "0"], default="theirs",
                    help="'theirs': DataLoaders as published (num_workers=4, persistent); "
                         "'0': patch DataLoader to num_workers=0")
    ap.add_argument("--out", help="output folder (created; their code runs with this as cwd)")
    ap.add_argument("--print-subset", action="store_true",
                    help="print the first 10 and last 5 subset rows (of total 50000) and exit")
    ap.add_argument("--subset-total", type=int, default=50000, help="total for --print-subset (default 50000)")
    ap.add_argument("--max-train-batches", type=int, default=None,
                    help="smoke test only: stop (exit 3) after this many training batches")
    ap.add_argument("--smoke-eval-rows", type=int, default=None,
                    help="smoke test only: evaluate on the first K val rows and K test rows instead of all")
    a = ap.parse_args(argv)
    if not a.print_subset:
        missing = [n for n in ("authors", "data", "dataset", "out") if getattr(a, n) is None]
        if missing:
            ap.error("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
        if a.epochs < 1:
            ap.error("--epochs must be at least 1")
    return a


def print_subset(a):
    count = a.subset if a.subset is not None else a.subset_total
    rows = subset_rows(a.subset_total, count, a.subset_seed)
    digest = hashlib.sha256(",".join(map(str, rows)).encode()).hexdigest()
    print(f"subsetRows(total: {a.subset_total}, count: {count}, seed: {a.subset_seed})")
    print("first 10:", rows[:10])
    print("last 5:  ", rows[-5:])
    print("sha256 of the comma-joined rows:", digest)


def write_json_atomic(path, obj):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Tee(io.TextIOBase):
    """Copies writes to the console stream and the log file; calls on_write for each chunk."""

    def __init__(self, console, log, on_write=None):
        self.console, self.log, self.on_write = console, log, on_write

    def write(self, s):
        self.console.write(s)
        self.log.write(s)
        if self.on_write is not None:
            self.on_write(s)
        return len(s)

    def flush(self):
        self.console.flush()
        self.log.flush()

    def isatty(self):
        return False

    @property
    def encoding(self):
        return getattr(self.console, "encoding", "utf-8")


def load_split(data_dir, index, split):
    """Images (n,H,W) uint8 and labels (n,) int64 of one ffrepro split, shards in numeric order."""
    import h5py
    import numpy as np

    info = index["splits"].get(split)
    if info is None or info["count"] == 0:
        raise SystemExit(f"{data_dir}: no '{split}' split")

    def shard_number(entry):
        m = re.search(r"(\d+)\.h5$", entry["file"])
        if not m:
            raise SystemExit(f"{data_dir}: unexpected shard name {entry['file']}")
        return int(m.group(1))

    images, labels = [], []
    for entry in sorted(info["shards"], key=shard_number):
        with h5py.File(os.path.join(data_dir, entry["file"]), "r") as f:
            im = f["images"][()]
            lb = f["labels"][()]
        if im.dtype != np.uint8 or im.ndim != 4 or im.shape[3] != 1:
            raise SystemExit(f"{entry['file']}: expected uint8 (n,H,W,1) images, got {im.dtype} {im.shape}")
        if len(im) != entry["count"] or len(lb) != entry["count"]:
            raise SystemExit(f"{entry['file']}: {len(im)} images / {len(lb)} labels, index says {entry['count']}")
        images.append(im[..., 0])
        labels.append(lb.astype(np.int64))
    images = np.ascontiguousarray(np.concatenate(images))
    labels = np.concatenate(labels)
    if len(images) != info["count"]:
        raise SystemExit(f"{data_dir}: split '{split}' has {len(images)} rows, index says {info['count']}")
    return images, labels


def _install_torchvision_standin():
    """A fake `torchvision` with the pieces their Load_Dataset uses for MNIST / F-MNIST,
    written to behave exactly like torchvision 0.28 on PIL images:
      Resize((h, w))        -> img.resize((w, h), Image.BILINEAR)  (functional_pil.resize)
      RandomHorizontalFlip  -> if torch.rand(1) < p: img.transpose(Image.FLIP_LEFT_RIGHT)
      ToTensor              -> float32 CHW tensor of pixel / 255 (functional.to_tensor)
      Compose               -> the transforms in order
    `datasets` gets MNIST / FashionMNIST from the shim (the same as with real torchvision).
    Anything else (RandomCrop, ColorJitter, CIFAR...) raises, as only MNIST/F-MNIST are run."""
    import types

    import numpy as np
    import torch
    from PIL import Image

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]

    class Compose:
        def __init__(self, transforms):
            self.transforms = transforms

        def __call__(self, img):
            for t in self.transforms:
                img = t(img)
            return img

    class Resize:
        def __init__(self, size, interpolation=None, max_size=None, antialias=True):
            if not (isinstance(size, (list, tuple)) and len(size) == 2) or interpolation is not None \
                    or max_size is not None or antialias is not True:
                raise NotImplementedError("torchvision stand-in: only Resize((h, w)) with default options")
            self.size = [int(size[0]), int(size[1])]

        def __call__(self, img):
            if not isinstance(img, Image.Image):
                raise TypeError("torchvision stand-in: Resize expects a PIL image")
            if (img.height, img.width) == tuple(self.size):  # torchvision returns the image unchanged
                return img
            return img.resize((self.size[1], self.size[0]), Image.BILINEAR)

    class RandomHorizontalFlip:
        def __init__(self, p=0.5):
            self.p = p

        def __call__(self, img):
            if torch.rand(1) < self.p:
                return img.transpose(Image.FLIP_LEFT_RIGHT)
            return img

    class ToTensor:
        def __call__(self, pic):
            if not isinstance(pic, Image.Image) or pic.mode != "L":
                raise NotImplementedError("torchvision stand-in: ToTensor of PIL mode 'L' images only")
            img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
            img = img.view(pic.size[1], pic.size[0], 1)
            img = img.permute((2, 0, 1)).contiguous()
            return img.to(dtype=torch.get_default_dtype()).div(255)

    def _missing(name):
        def f(*a, **k):
            raise NotImplementedError(f"torchvision stand-in has no {name}")
        return f

    tv = types.ModuleType("torchvision")
    tv.__version__ = "stand-in (tools/fidelity/run_authors.py)"
    tv.__path__ = []
    transforms = types.ModuleType("torchvision.transforms")
    transforms.Compose, transforms.Resize = Compose, Resize
    transforms.RandomHorizontalFlip, transforms.ToTensor = RandomHorizontalFlip, ToTensor
    for n in ("RandomCrop", "ColorJitter", "RandomGrayscale", "Normalize"):
        setattr(transforms, n, _missing("transforms." + n))
    datasets = types.ModuleType("torchvision.datasets")
    for n in ("CIFAR10", "CIFAR100"):
        setattr(datasets, n, _missing("datasets." + n))
    tv.transforms, tv.datasets = transforms, datasets
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.transforms"] = transforms
    sys.modules["torchvision.datasets"] = datasets
    return tv


def main(argv):
    a = parse_args(argv)
    if a.print_subset:
        print_subset(a)
        return 0

    # Threads and backend before torch / matplotlib are imported.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    os.environ["MPLBACKEND"] = "Agg"
    sys.dont_write_bytecode = True  # leave the authors' folder as it is

    authors = os.path.abspath(a.authors)
    data_dir = os.path.abspath(a.data)
    out = os.path.abspath(a.out)
    for n in AUTHOR_FILES:
        if not os.path.isfile(os.path.join(authors, n)):
            raise SystemExit(f"{authors}: {n} is missing (see tools/fidelity/README.md for how to get their files)")
    index_path = os.path.join(data_dir, "index.json")
    if not os.path.isfile(index_path):
        raise SystemExit(f"{data_dir}: no index.json (not an ffrepro prepared dataset, or `repro prep` not finished)")
    with open(index_path) as f:
        index = json.load(f)
    if index.get("dataset") != a.dataset:
        raise SystemExit(f"{data_dir} holds '{index.get('dataset')}', not '{a.dataset}'")
    os.makedirs(out, exist_ok=True)

    import numpy as np
    import torch
    import torch.utils.data as tud
    import matplotlib
    matplotlib.use("Agg")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)
    torch.cuda.is_available = lambda: False  # their code picks cuda when available; keep CPU

    try:
        import torchvision
        tv_desc = f"torchvision {torchvision.__version__}"
    except Exception as e:  # ImportError, or a torchvision built for another torch
        torchvision = _install_torchvision_standin()
        tv_desc = f"stand-in in run_authors.py (import torchvision failed: {type(e).__name__}: {str(e)[:200]})"
    from PIL import Image

    # ---- data -------------------------------------------------------------------------
    t0 = time.time()
    tr_x, tr_y = load_split(data_dir, index, "train")
    va_x, va_y = load_split(data_dir, index, "val")
    te_x, te_y = load_split(data_dir, index, "test")
    n_train, n_val = len(tr_x), len(va_x)
    if (n_train, n_val) != (50000, 10000):
        raise SystemExit(f"{data_dir}: train/val are {n_train}/{n_val} rows; their split needs 50000/10000")
    full_x, full_y = np.concatenate([tr_x, va_x]), np.concatenate([tr_y, va_y])
    train_rows = list(range(n_train)) if a.subset is None else subset_rows(n_train, a.subset, a.subset_seed)
    val_rows = list(range(n_train, n_train + n_val))
    if a.smoke_eval_rows is not None:  # smoke test only; never for results
        val_rows, te_x, te_y = val_rows[:a.smoke_eval_rows], te_x[:a.smoke_eval_rows], te_y[:a.smoke_eval_rows]
    load_seconds = time.time() - t0

    class ShardDataset(tud.Dataset):
        """Stands in for torchvision.datasets.MNIST / FashionMNIST: (PIL 'L' image, int label)."""

        def __init__(self, images, labels, transform, name):
            self.data, self.targets, self.transform, self.name = images, labels, transform, name
            self.classes = index["label_sets"]["labels"]

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            img = Image.fromarray(self.data[i])  # uint8 (28,28) -> mode 'L', as torchvision's mode="L"
            target = int(self.targets[i])
            if self.transform is not None:
                img = self.transform(img)
            return img, target

    made = {}

    def dataset_class(name):
        def make(root=None, train=True, download=False, transform=None, target_transform=None):
            if name != a.dataset:
                raise RuntimeError(f"their code asked for {name}, but --dataset is {a.dataset}")
            if target_transform is not None:
                raise NotImplementedError("target_transform")
            ds = ShardDataset(full_x, full_y, transform, "train") if train else ShardDataset(te_x, te_y, transform, "test")
            made["train" if train else "test"] = ds
            return ds
        return make

    torchvision.datasets.MNIST = dataset_class("mnist")
    torchvision.datasets.FashionMNIST = dataset_class("fashion-mnist")

    def random_split(dataset, lengths, generator=None):
        if dataset is not made.get("train") or list(lengths) != [50000, 10000]:
            raise RuntimeError(f"unexpected random_split({type(dataset).__name__}, {lengths})")
        return [tud.Subset(dataset, train_rows), tud.Subset(dataset, val_rows)]

    tud.random_split = random_split

    if a.loader_workers == "0":
        _DataLoader = tud.DataLoader

        class DataLoader0(_DataLoader):
            def __init__(self, *args, **kw):
                kw["num_workers"] = 0
                kw.pop("persistent_workers", None)
                super().__init__(*args, **kw)

        tud.DataLoader = DataLoader0

    # ---- their modules ------------------------------------------------------------------
    sys.path.insert(0, authors)
    import Load_Dataset
    import VGG8 as vgg8_module

    loader_name = "load_fmnist" if a.dataset == "fashion-mnist" else "load_mnist"
    their_loader = getattr(Load_Dataset, loader_name)

    def seeded_loader(*args, **kw):
        result = their_loader(*args, **kw)  # calls torch.manual_seed(42) before its split
        torch.manual_seed(a.seed)
        random.seed(a.seed)
        np.random.seed(a.seed)
        return result

    Load_Dataset.load_mnist = seeded_loader  # Main.py does `from Load_Dataset import load_mnist`

    main_path = os.path.join(authors, "Main.py")
    with open(main_path, encoding="utf-8") as f:
        source = f.read()
    if source.count(EPOCHS_LINE) != 1:
        raise SystemExit(f"{main_path}: `{EPOCHS_LINE}` occurs {source.count(EPOCHS_LINE)} times, expected once")
    source = source.replace(EPOCHS_LINE, f"epochs = {a.epochs}")

    # ---- bookkeeping ------------------------------------------------------------------
    result = {
        "status": "running",
        "smoke_test": a.smoke_eval_rows is not None or a.max_train_batches is not None,
        "dataset": a.dataset,
        "seed": a.seed,
        "subset": a.subset if a.subset is not None else n_train,
        "subset_given": a.subset is not None,
        "subset_seed": a.subset_seed,
        "subset_first10": train_rows[:10],
        "subset_last5": train_rows[-5:],
        "subset_sha256": hashlib.sha256(",".join(map(str, train_rows)).encode()).hexdigest(),
        "epochs": a.epochs,
        "batch_size": 128,
        "train_images": len(train_rows),
        "valid_images": len(val_rows),
        "test_images": len(te_x),
        "epoch_results": [],
        "test_acc": None,
        "test_acc_unrounded": None,
        "best_epoch": None,
        "wall_seconds": None,
        "data_load_seconds": round(load_seconds, 3),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": tv_desc,
            "numpy": np.__version__,
            "pillow": Image.__version__,
            "matplotlib": matplotlib.__version__,
        },
        "threads": {"torch_intra": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "loader_workers": "as published (4, persistent)" if a.loader_workers == "theirs" else "0 (patched)",
        "device": "cpu",
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "data": {"dir": data_dir, "conversion_fingerprint": index.get("conversion", {}).get("fingerprint"),
                 "shards": {s: [e["sha256"] for e in index["splits"][s]["shards"]] for s in ("train", "val", "test")}},
        "authors": {"repo": "KCL-KAI-Lab/ASGE", "commit_fetched": AUTHORS_COMMIT, "dir": authors,
                    "sha256": {n: sha256_file(os.path.join(authors, n)) for n in AUTHOR_FILES},
                    "main_py_edit": f"`{EPOCHS_LINE}` -> `epochs = {a.epochs}`"},
        "command": [sys.executable] + sys.argv,
        "progress": None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    result_path = os.path.join(out, "result.json")
    write_json_atomic(result_path, result)

    ns = {"__name__": "__main__", "__file__": main_path, "__builtins__": __builtins__}
    phase = {"epoch": 0, "train_batches": 0, "train_images": 0, "train_model_s": 0.0,
             "first_test_t": None, "test_batches": 0, "test_images": 0, "test_errors": 0,
             "last_write": 0.0, "lr_used": None}

    def progress(stage):
        elapsed_train = (time.time() - ns["start"]) if "start" in ns and phase["first_test_t"] is None else None
        result["progress"] = {
            "stage": stage, "epoch": phase["epoch"], "train_batches_done": phase["train_batches"],
            "train_images_done": phase["train_images"],
            "train_images_per_s": (phase["train_images"] / elapsed_train) if elapsed_train else None,
            "eval_batches_done": phase["test_batches"], "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        now = time.time()
        if now - phase["last_write"] > 20:
            phase["last_write"] = now
            write_json_atomic(result_path, result)

    VGG8 = vgg8_module.VGG8
    their_forward, their_test = VGG8.forward, VGG8.test

    def forward(self, imgs, labs):
        if phase["train_batches"] == 0 or phase["first_test_t"] is not None:  # a new epoch began
            phase.update(epoch=phase["epoch"] + 1, train_batches=0, train_images=0, train_model_s=0.0,
                         first_test_t=None, test_batches=0, test_images=0, test_errors=0,
                         lr_used=self.classifier_optimiser.param_groups[0]["lr"])
        t = time.time()
        out_ = their_forward(self, imgs, labs)
        phase["train_model_s"] += time.time() - t
        phase["train_batches"] += 1
        phase["train_images"] += int(imgs.shape[0])
        progress("train")
        if a.max_train_batches is not None and phase["train_batches"] >= a.max_train_batches:
            el = time.time() - ns["start"]
            print(f"[run_authors] smoke test: {phase['train_batches']} batches, {phase['train_images']} images "
                  f"in {el:.1f}s = {phase['train_images'] / el:.2f} images/s "
                  f"(model calls {phase['train_images'] / phase['train_model_s']:.2f} images/s); stopping",
                  file=sys.stderr)
            result["status"] = "smoke-test-stopped"
            write_json_atomic(result_path, result)
            sys.stdout.flush()
            os._exit(3)
        return out_

    def test(self, imgs, labs):
        if phase["first_test_t"] is None:
            phase["first_test_t"] = time.time()
        errors = their_test(self, imgs, labs)
        phase["test_batches"] += 1
        phase["test_images"] += int(imgs.shape[0])
        phase["test_errors"] += errors
        progress("eval")
        return errors

    VGG8.forward, VGG8.test = forward, test

    line_buf = []

    def on_write(s):
        # Main.py prints "Epoch [k/N] ..." once per epoch, after everything of that epoch is
        # computed; read the full-precision values from its namespace at that moment.
        line_buf.append(s)
        if "\n" not in s:
            return
        text = "".join(line_buf)
        line_buf.clear()
        for line in text.splitlines():
            if line.startswith("Epoch [") and "avg_valid_acc" in ns:
                model = ns["model"]
                end, start = ns["end"], ns["start"]
                t_split = phase["first_test_t"] or end
                result["epoch_results"].append({
                    "epoch": ns["epoch"],
                    "train_loss": float(ns["avg_train_loss"]),
                    "train_acc": float(ns["avg_train_acc"]),
                    "valid_acc": float(ns["avg_valid_acc"]),
                    "lr": float(ns["current_lr"]),
                    "lr_used": phase["lr_used"],
                    "seconds": end - start,
                    "train_seconds": t_split - start,
                    "valid_seconds": end - t_split,
                    "train_images_per_s": len(train_rows) / (t_split - start),
                    "layer_train_acc": [float(b.acc_epoch[-1]) for b in model.blocks],
                    "layer_valid_acc": [float(b.valid_epoch[-1]) for b in model.blocks],
                })
                if ns["epoch"] == ns.get("epochs"):  # what model.test sees from now on is the test set
                    phase.update(test_batches=0, test_images=0, test_errors=0)
                    result["progress"] = dict(result["progress"] or {}, stage="test")
                phase["last_write"] = time.time()
                write_json_atomic(result_path, result)

    # ---- run ---------------------------------------------------------------------------
    log = open(os.path.join(out, "log.txt"), "w", buffering=1, encoding="utf-8")
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = Tee(old_out, log, on_write)
    sys.stderr = Tee(old_err, log)
    old_cwd = os.getcwd()
    t_start = time.time()
    rc = 0
    try:
        print(f"[run_authors] {a.dataset} seed {a.seed} subset {result['subset']} (seed {a.subset_seed}) "
              f"epochs {a.epochs}; torch {torch.__version__}, {tv_desc}; threads {torch.get_num_threads()}; "
              f"loader workers: {result['loader_workers']}", file=sys.stderr)
        os.chdir(out)
        code = compile(source, main_path, "exec")
        exec(code, ns)
        result["status"] = "finished"
    except BaseException as e:
        result["status"] = "failed"
        result["error"] = "".join(traceback.format_exception(e))[-4000:]
        traceback.print_exc()
        rc = 1
    finally:
        os.chdir(old_cwd)
        result["wall_seconds"] = time.time() - t_start
        result["progress"] = None if result["status"] == "finished" else result["progress"]
        if "avg_test_acc" in ns:
            result["test_acc_unrounded"] = float(ns["avg_test_acc"])
            result["test_errors"] = int(ns["test_errors"])
            result["test_counted_by_wrapper"] = {"images": phase["test_images"], "errors": phase["test_errors"]}
        if ns.get("valid_acc_list"):
            v = ns["valid_acc_list"]
            result["best_epoch"] = v.index(max(v)) + 1
            result["best_valid_acc"] = float(max(v))
        ta = os.path.join(out, "Test_Accuracy.txt")
        if os.path.isfile(ta) and os.path.getmtime(ta) >= t_start:
            with open(ta) as f:
                m = re.search(r"Test Accuracy:\s*([0-9.]+)%", f.read())
            result["test_acc"] = float(m.group(1)) if m else None
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json_atomic(result_path, result)
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = old_out, old_err
        log.close()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
