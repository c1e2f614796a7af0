"""Make relcal's bundled sample data: small files of saved model predictions.

DEVELOPMENT-ONLY SCRIPT.  It needs numpy, scipy and scikit-learn (scikit-learn
only for its bundled copy of the UCI digits data, ``load_digits``; scipy for
image filters and a one-dimensional minimisation).  The relcal package does not
import this script and does not depend on scipy or scikit-learn.

Run it from the repository root:

    python sample_data/make_samples.py

It rewrites, in the directory that holds this script:

    digits_mlp_val.npz, digits_mlp_test.npz   a numpy MLP on scikit-learn's digits
    digits_mlp_test.csv                        the same test predictions as a table
    xor_binary.npz                             a tanh network on noisy 2-D XOR
    segmentation_small.npz                     per-pixel logits on synthetic scenes

and prints the statistics quoted in sample_data/README.md.  Everything is seeded,
so a second run writes byte-identical files (on the same platform and numpy; the
long gradient-descent runs make the last bits of the floats depend on the BLAS
kernels, so another machine may differ in the last digits).

The .npz files are written by ``np.savez_compressed`` (whose zip members carry
the fixed date 1980-01-01, so the files depend only on the arrays).  They hold no
object arrays and load with ``np.load(path, allow_pickle=False)``.

Statistics use relcal's conventions: confidence is the top-label softmax
probability computed in float64 from the stored float32 logits; ECE15 uses 15
equal-width bins, right-closed ``(lo, hi]`` with 0 in the first bin.
"""

from __future__ import annotations

import os

# One BLAS thread: the same summation order on every run.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

OUT = Path(__file__).resolve().parent
N_BINS = 15


# --------------------------------------------------------------------------- io
def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed``, refusing object arrays."""
    for key, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"{key}: object arrays are not allowed")
    np.savez_compressed(path, **arrays)


def save_csv(path: Path, logits: np.ndarray, labels: np.ndarray) -> None:
    """``label`` (class index) then ``logit_0..`` with 9 significant digits,
    enough to read every float32 back exactly."""
    header = ",".join(["label"] + [f"logit_{c}" for c in range(logits.shape[1])])
    lines = [header]
    for y, row in zip(labels, logits, strict=True):
        lines.append(",".join([str(int(y))] + [f"{float(v):.9g}" for v in row]))
    path.write_text("\n".join(lines) + "\n", encoding="ascii", newline="\n")


# ----------------------------------------------------------------------- metrics
def softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def ece_rc(conf: np.ndarray, hit: np.ndarray, n_bins: int = N_BINS) -> float:
    """L1 ECE with equal-width, right-closed bins (0 in the first bin)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], conf, side="left")
    s_conf = np.bincount(b, weights=conf, minlength=n_bins)
    s_hit = np.bincount(b, weights=hit.astype(np.float64), minlength=n_bins)
    return float(np.abs(s_hit - s_conf).sum() / len(conf))


def multiclass_stats(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    p = softmax64(logits)
    conf = p.max(axis=1)
    hit = p.argmax(axis=1) == labels
    onehot = np.eye(p.shape[1])[labels]
    z = logits.astype(np.float64)
    zmax = z.max(axis=1, keepdims=True)
    logz = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return {
        "n": len(labels),
        "accuracy": float(hit.mean()),
        "mean_confidence": float(conf.mean()),
        "ece15": ece_rc(conf, hit),
        "nll": float((logz - z[np.arange(len(labels)), labels]).mean()),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
    }


def binary_stats(logit1: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Binary view: two classes with logits (0, z), so P(class 1) = sigmoid(z)."""
    z = logit1.astype(np.float64)
    two = np.stack([np.zeros_like(z), z], axis=1)
    s = multiclass_stats(two, labels)
    p1 = softmax64(two)[:, 1]
    s["mean_p1"] = float(p1.mean())
    s["frac_positive"] = float(labels.mean())
    s["positive_ece15"] = ece_rc(p1, labels == 1)  # bins of P(1) vs frequency of 1
    s["brier_sklearn"] = float(((p1 - labels) ** 2).mean())  # = brier / 2
    return s


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """NLL-optimal temperature (for the README's information only)."""

    def nll(log_t: float) -> float:
        return multiclass_stats(logits / np.exp(log_t), labels)["nll"]

    res = minimize_scalar(
        nll, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(res.x))


def show(name: str, s: dict[str, float]) -> None:
    print(
        f"  {name}: "
        + ", ".join(
            f"{k}={v}" if isinstance(v, int) else f"{k}={v:.4f}" for k, v in s.items()
        )
    )


# ------------------------------------------------------------------ 1-2. digits
DIGITS_SEED = 20240601
DIGITS_TRAIN_PER_CLASS = 20  # 200 training images
DIGITS_N_VAL = 597  # the other 1,597 images: 597 validation, 1,000 test
DIGITS_HIDDEN = 64
DIGITS_LR = 0.1
DIGITS_MOMENTUM = 0.9
DIGITS_EPOCHS = 10_000


def make_digits() -> None:
    data = load_digits()
    x = data.data.astype(np.float64) / 16.0  # pixels 0..16 -> [0, 1]
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(DIGITS_SEED)

    # Stratified training split (20 per class); the rest shuffled into val / test.
    train = np.concatenate(
        [
            rng.permutation(np.flatnonzero(y == c))[:DIGITS_TRAIN_PER_CLASS]
            for c in range(10)
        ]
    )
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), train))
    val, test = rest[:DIGITS_N_VAL], rest[DIGITS_N_VAL:]

    # 64 -> 64 (ReLU) -> 10, softmax cross-entropy, no regularisation,
    # full-batch gradient descent with momentum, long past zero training error.
    w1 = rng.standard_normal((64, DIGITS_HIDDEN)) * np.sqrt(2.0 / 64)
    b1 = np.zeros(DIGITS_HIDDEN)
    w2 = rng.standard_normal((DIGITS_HIDDEN, 10)) * np.sqrt(1.0 / DIGITS_HIDDEN)
    b2 = np.zeros(10)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(q) for q in params]
    xt, yt = x[train], y[train]
    onehot = np.eye(10)[yt]
    for _ in range(DIGITS_EPOCHS):
        h = np.maximum(xt @ w1 + b1, 0.0)
        p = softmax64(h @ w2 + b2)
        g = (p - onehot) / len(yt)  # d(mean cross-entropy)/d(logits)
        gh = (g @ w2.T) * (h > 0)
        grads = [xt.T @ gh, gh.sum(0), h.T @ g, g.sum(0)]
        for q, v, gq in zip(params, velocity, grads, strict=True):
            v *= DIGITS_MOMENTUM
            v -= DIGITS_LR * gq
            q += v

    def logits_of(idx: np.ndarray) -> np.ndarray:
        return (np.maximum(x[idx] @ w1 + b1, 0.0) @ w2 + b2).astype(np.float32)

    names = np.array([str(c) for c in range(10)], dtype="<U1")
    print(f"digits_mlp (train {len(train)}, val {len(val)}, test {len(test)})")
    show("train", multiclass_stats(logits_of(train), y[train]))
    for split, idx in (("val", val), ("test", test)):
        logits = logits_of(idx)
        save_npz(
            OUT / f"digits_mlp_{split}.npz",
            logits=logits,
            labels=y[idx],
            class_names=names,
        )
        show(split, multiclass_stats(logits, y[idx]))
        if split == "test":
            save_csv(OUT / "digits_mlp_test.csv", logits, y[idx])
    t = fit_temperature(logits_of(val), y[val])
    print(f"  NLL-optimal temperature on val: T={t:.4f}")
    show("test / T", multiclass_stats(logits_of(test) / np.float32(t), y[test]))


# ---------------------------------------------------------------------- 3. XOR
XOR_SEED = 20240602
XOR_N_TRAIN = 400
XOR_N_HELDOUT = 2000
XOR_SIGMA = 0.5  # cluster standard deviation; centres at (+-1, +-1)
XOR_FLIP = 0.05  # label noise: this fraction of labels flipped
XOR_HIDDEN = 16
XOR_LR = 0.3
XOR_MOMENTUM = 0.9
XOR_EPOCHS = 20_000


def xor_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cluster = rng.integers(0, 4, n)
    sx = np.where(cluster & 1, 1.0, -1.0)
    sy = np.where(cluster & 2, 1.0, -1.0)
    pts = np.stack([sx, sy], axis=1) + XOR_SIGMA * rng.standard_normal((n, 2))
    y = (sx != sy).astype(np.int64)  # XOR of the cluster's signs
    flip = rng.random(n) < XOR_FLIP
    y[flip] = 1 - y[flip]
    return pts, y


def make_xor() -> None:
    rng = np.random.default_rng(XOR_SEED)
    xt, yt = xor_points(XOR_N_TRAIN, rng)
    xh, yh = xor_points(XOR_N_HELDOUT, rng)

    # 2 -> 16 (tanh) -> 1 (sigmoid), binary cross-entropy, full-batch GD.
    w1 = rng.standard_normal((2, XOR_HIDDEN))
    b1 = 0.5 * rng.standard_normal(XOR_HIDDEN)
    w2 = rng.standard_normal(XOR_HIDDEN) / np.sqrt(XOR_HIDDEN)
    b2 = np.zeros(1)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(q) for q in params]
    for _ in range(XOR_EPOCHS):
        h = np.tanh(xt @ w1 + b1)
        z = h @ w2 + b2[0]
        g = (1.0 / (1.0 + np.exp(-z)) - yt) / len(yt)
        gh = np.outer(g, w2) * (1.0 - h * h)
        grads = [xt.T @ gh, gh.sum(0), h.T @ g, np.array([g.sum()])]
        for q, v, gq in zip(params, velocity, grads, strict=True):
            v *= XOR_MOMENTUM
            v -= XOR_LR * gq
            q += v

    def logit_of(pts: np.ndarray) -> np.ndarray:
        return (np.tanh(pts @ w1 + b1) @ w2 + b2[0]).astype(np.float32)

    held = logit_of(xh)
    save_npz(OUT / "xor_binary.npz", logits=held, labels=yh)
    print(f"xor_binary (train {len(yt)}, held-out {len(yh)})")
    show("train", binary_stats(logit_of(xt), yt))
    show("held-out", binary_stats(held, yh))


# ------------------------------------------------------------- 4. segmentation
SEG_SEED = 20240603
SEG_N, SEG_SIZE = 4, 48
SEG_CLASSES = ("background", "disc", "square", "bar", "ring")
# Mean colour (RGB in [0, 1]) of each class; ring is close to disc on purpose.
SEG_COLOURS = np.array(
    [
        [0.20, 0.20, 0.25],  # background
        [0.85, 0.30, 0.30],  # disc
        [0.30, 0.80, 0.35],  # square
        [0.30, 0.40, 0.85],  # bar
        [0.80, 0.60, 0.30],  # ring
    ]
)
SEG_SHADING = 0.05  # std of a smooth brightness field (per image)
SEG_NOISE = 0.5  # std of per-pixel, per-channel Gaussian noise
SEG_BLUR = 1.0  # Gaussian blur (pixels) applied to the noisy image
SEG_SCALE = 2.0  # logits = SEG_SCALE * Gaussian log-likelihood: over-confident
IGNORE = 255


def seg_scene(rng: np.random.Generator) -> np.ndarray:
    """Background plus one object of each class, in random order (later on top)."""
    lab = np.zeros((SEG_SIZE, SEG_SIZE), np.int64)
    yy, xx = np.mgrid[0:SEG_SIZE, 0:SEG_SIZE].astype(np.float64)
    for c in rng.permutation([1, 2, 3, 4]):
        cy, cx = rng.uniform(8, SEG_SIZE - 8, 2)
        if c == 1:  # disc
            r = rng.uniform(4.5, 7.5)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif c == 2:  # axis-aligned square
            half = rng.uniform(4.0, 6.5)
            mask = (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
        elif c == 3:  # rotated bar
            a = rng.uniform(0, np.pi)
            half_len, half_w = rng.uniform(8, 13), rng.uniform(1.5, 2.5)
            u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
            v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
            mask = (np.abs(u) <= half_len) & (np.abs(v) <= half_w)
        else:  # ring
            r_out = rng.uniform(6.0, 8.5)
            r_in = r_out - rng.uniform(2.5, 3.5)
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            mask = (d2 <= r_out * r_out) & (d2 >= r_in * r_in)
        lab[mask] = c
    return lab


def make_segmentation() -> None:
    rng = np.random.default_rng(SEG_SEED)
    truth = np.stack([seg_scene(rng) for _ in range(SEG_N)])  # (N, H, W)

    # Observed image: class colour + smooth shading + pixel noise, then blurred.
    img = SEG_COLOURS[truth]  # (N, H, W, 3)
    shade = ndimage.gaussian_filter(
        rng.standard_normal((SEG_N, SEG_SIZE, SEG_SIZE, 1)), sigma=(0, 8, 8, 0)
    )
    img = img + shade * (SEG_SHADING / shade.std())
    img = img + SEG_NOISE * rng.standard_normal(img.shape)
    img = ndimage.gaussian_filter(img, sigma=(0, SEG_BLUR, SEG_BLUR, 0))

    # Per-class colour-template match: Gaussian log-likelihood with the noise std
    # left after the blur, times SEG_SCALE (a scale of 1 is the nominal model).
    impulse = np.zeros((41, 41))
    impulse[20, 20] = 1.0
    kernel = ndimage.gaussian_filter(impulse, SEG_BLUR)
    s = SEG_NOISE * np.sqrt((kernel**2).sum())
    d2 = ((img[..., None, :] - SEG_COLOURS) ** 2).sum(-1)  # (N, H, W, C)
    logits = (-SEG_SCALE * d2 / (2 * s * s)).transpose(0, 3, 1, 2).astype(np.float32)

    # Ignore band (as VOC's void outline): the 1-pixel band just outside each
    # object's outline (4-neighbourhood), including the inside edge of a ring hole.
    cross = ndimage.generate_binary_structure(2, 1)
    band = np.zeros(truth.shape, bool)
    for i in range(SEG_N):
        for c in range(1, len(SEG_CLASSES)):
            m = truth[i] == c
            band[i] |= ndimage.binary_dilation(m, cross) & ~m
    labels = np.where(band, IGNORE, truth).astype(np.int64)

    names = np.array(SEG_CLASSES, dtype="<U10")
    save_npz(
        OUT / "segmentation_small.npz", logits=logits, labels=labels, class_names=names
    )

    keep = labels != IGNORE
    flat = logits.transpose(0, 2, 3, 1)[keep]  # (n_kept, C)
    print(f"segmentation_small (N={SEG_N}, C={len(names)}, H=W={SEG_SIZE})")
    print(
        f"  ignored pixels: {int((~keep).sum())} of {keep.size} ({(~keep).mean():.4f})"
    )
    show("non-ignored pixels", multiclass_stats(flat, labels[keep]))
    pred = logits.argmax(axis=1)
    for c, name in enumerate(names):
        m = keep & (labels == c)
        print(
            f"    {name:10s} pixels={int(m.sum()):5d} "
            f"recall={float((pred[m] == c).mean()):.4f}"
        )


if __name__ == "__main__":
    make_digits()
    make_xor()
    make_segmentation()
