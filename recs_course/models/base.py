"""The contract every recommender of the course follows, and argument checks shared by the models.

A :class:`Recommender` scores (user, item) pairs. Shapes: ``users`` and ``items`` are integer
tensors of shape ``(B,)`` holding 0-based indices; scores are float tensors of shape ``(B,)``
(logits for implicit-feedback models, ratings for explicit ones). Public methods check their
indices with :func:`check_indices` (see :func:`index_checks` for tensors on an accelerator).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .._arrays import _exact_int64, _numpy_values
from ..utils import (  # noqa: F401  (the argument checks live in utils; models use them here)
    check_non_negative_int,
    check_positive_int,
    is_real_number,
)

__all__ = [
    "Recommender",
    "model_device",
    "place_model",
    "check_module",
    "restored_modes",
    "check_indices",
    "index_checks",
]

#: The most (user, item) pairs the fallback :meth:`Recommender.score_all` scores in one call.
MAX_PAIRS_PER_CHUNK = 1 << 20


def model_device(module: nn.Module) -> torch.device:
    """The device of a module: that of its first parameter, else its first buffer, else the CPU.

    The one way to ask where a model is (:class:`Recommender` has no ``device`` attribute).
    Works for modules without parameters (such as :class:`~recs_course.models.Popularity`), where
    ``next(module.parameters())`` would raise ``StopIteration``.
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def check_module(model: object) -> None:
    """``model`` must be a torch ``nn.Module``, checked before anything else: :func:`fit`,
    :func:`~recs_course.schedules.lr_range_test` and the evaluators set its train/eval mode,
    read its device and move it (anything else would fail later with an ``AttributeError``)."""
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"model must be a torch nn.Module (a recs_course Recommender), got "
            f"{type(model).__name__}: training and evaluation set its train/eval mode and read "
            "its device; wrap a scoring function in an nn.Module subclass whose "
            "forward(users, items) calls it"
        )


@contextlib.contextmanager
def restored_modes(model: nn.Module) -> Iterator[None]:
    """A block after which every submodule of ``model`` is back in the train/eval mode it had
    before: ``model.train(was_training)`` would set every submodule to the model's own flag,
    and so switch a submodule deliberately left in eval mode (a frozen batch norm) to train."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def place_model(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """Where :func:`~recs_course.training.fit`, :func:`~recs_course.schedules.lr_range_test` and
    every ``evaluate_*`` run: the one rule for their ``device`` argument.

    ``None`` (the default) means the model's own device (:func:`model_device`), and nothing moves.
    Any other value is read by :func:`recs_course.utils.get_device` (``"auto"`` picks CUDA, then
    MPS, then the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``torch.device``; a device this
    machine lacks is a ``ValueError``), and the model is moved there with ``model.to(device)``
    (in place, as ``nn.Module.to`` does) before the inputs follow it. Returns the device.
    """
    from ..utils import get_device

    if device is None:
        return model_device(model)
    dev = get_device(device)
    model.to(dev)
    return dev


class Recommender(nn.Module):
    """Base class of the course's models.

    Subclasses implement :meth:`forward` and may override :meth:`score_all` (one matmul where the
    model allows it), :meth:`pair_scores` (graph models propagate once for both item sets),
    :meth:`regularization` and :meth:`scoring_pass` (what every batch of an evaluation shares,
    computed once).

    Models built on training data (a graph, a rating matrix, counts) also have
    ``from_interactions(users, items, n_users, n_items, ...)``, the one constructor from
    interaction lists.

    Args:
        n_users: number of users ``U`` (user indices are ``0 .. U-1``).
        n_items: number of items ``I`` (item indices are ``0 .. I-1``).
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = check_positive_int("n_users", n_users)
        self.n_items = check_positive_int("n_items", n_items)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}"

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Score pairs: ``users (B,)``, ``items (B,)`` -> ``(B,)`` float scores.

        Implementations start with ``users, items = self._pairs(users, items)``, which checks the
        indices (see :func:`check_indices`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    # -- index checks at the public entry points -----------------------------------------------
    def _index(self, name: str, values: object, upper: int, what: str, ndim: int | tuple = 1):
        """``values`` checked as indices in ``[0, upper)`` (non-tensors land on the model's device)."""
        device = None if isinstance(values, Tensor) else model_device(self)
        return check_indices(name, values, upper, ndim=ndim, device=device, what=what)

    def _users(self, users: object, name: str = "users") -> Tensor:
        """``users (B,)`` checked against ``n_users``."""
        return self._index(name, users, self.n_users, f"n_users = {self.n_users}")

    def _items(self, items: object, name: str = "items", ndim: int | tuple = 1) -> Tensor:
        """``items`` checked against ``n_items``."""
        return self._index(name, items, self.n_items, f"n_items = {self.n_items}", ndim)

    def _pairs(self, users: object, items: object, items_name: str = "items"):
        """``(users (B,), items (B,))`` checked: indices in range, same shape."""
        users, items = self._users(users), self._items(items, items_name)
        check_pair_shapes(users, items, items_name)
        return users, items

    def _pair_args(self, users: object, pos: object, neg: object):
        """``(users (B,), pos (B,), neg (B,) or (B, K))`` of :meth:`pair_scores`, checked."""
        users, pos = self._pairs(users, pos, "pos")
        neg = self._items(neg, "neg", ndim=(1, 2))
        if neg.dim() == 1:
            check_pair_shapes(users, neg, "neg")
        elif neg.shape[0] != users.shape[0]:
            raise ValueError(
                f"neg must have shape (B,) or (B, K) with B = {users.shape[0]} (one row of "
                f"negatives per user), got {tuple(neg.shape)}"
            )
        return users, pos, neg

    def _item_args(self, users: object, items: tuple) -> tuple[Tensor, list[Tensor]]:
        """``(users (B,), *items)`` of :meth:`regularization`, checked: each item array ``(B,)``
        or ``(B, K)``. Names in messages: ``items`` (one array), ``pos``/``neg`` (two), else
        ``items[k]``."""
        users = self._users(users)
        if len(items) == 1:
            names = ("items",)
        elif len(items) == 2:
            names = ("pos", "neg")
        else:
            names = tuple(f"items[{k}]" for k in range(len(items)))
        checked = []
        for name, values in zip(names, items, strict=True):
            tensor = self._items(values, name, ndim=(1, 2))
            if tensor.shape[0] != users.shape[0]:
                raise ValueError(
                    f"{name} must have shape (B,) or (B, K) with B = {users.shape[0]} (one row "
                    f"per user), got {tuple(tensor.shape)}"
                )
            checked.append(tensor)
        return users, checked

    @contextlib.contextmanager
    def scoring_pass(self) -> Iterator[None]:
        """A block in which the model scores many batches with fixed weights (an evaluation).

        The evaluators of :mod:`recs_course.evaluation` run inside ``with model.scoring_pass():``
        (in eval mode, under ``torch.no_grad()``). A model whose every score needs one shared
        computation (a graph propagation, every item's reconstruction) computes it once here
        and reuses it for every ``forward`` / ``score_all`` / ``pair_scores`` call in the block,
        and forgets it on exit (the graph models and item-based AutoRec override it with
        :meth:`_sharing_pass`). The default does nothing: MF and the NCF models have nothing to
        share.
        """
        yield

    @contextlib.contextmanager
    def _sharing_pass(self) -> Iterator[None]:
        """The body of a :meth:`scoring_pass` override: inside it :meth:`_pass_value` computes
        each shared value once; leaving the outermost block forgets them (blocks may nest)."""
        self.__dict__["_pass_depth"] = self.__dict__.get("_pass_depth", 0) + 1
        try:
            yield
        finally:
            self.__dict__["_pass_depth"] -= 1
            if self.__dict__["_pass_depth"] == 0:
                self.__dict__.pop("_pass_values", None)

    def __getstate__(self) -> dict:
        # a copy or a pickle made inside a scoring pass is not itself inside one
        state = super().__getstate__()
        state.pop("_pass_depth", None)
        state.pop("_pass_values", None)
        return state

    def _sharing(self) -> bool:
        """Whether values computed now may be shared: inside a scoring pass, in eval mode and
        without autograd (a training step, or scores that need gradients, compute afresh)."""
        return (
            self.__dict__.get("_pass_depth", 0) > 0
            and not self.training
            and not torch.is_grad_enabled()
        )

    def _weights_key(self) -> tuple:
        """Identity, storage and version counter of every parameter and buffer: it changes when
        a weight is modified in place (an optimiser step, ``load_state_dict``), replaced or
        moved, so a value shared in a scoring pass is never stale."""
        return tuple(
            (id(t), t.data_ptr() if t.layout == torch.strided else 0, t._version, t.dtype, t.device)
            for t in (*self.parameters(), *self.buffers())
        )

    def _pass_value(self, name: str, compute: Callable[[], object]) -> object:
        """``compute()``, computed once per scoring pass (see :meth:`_sharing`) and reused while
        the weights stay the same; outside a pass, computed on every call."""
        if not self._sharing():
            return compute()
        key = self._weights_key()
        values = self.__dict__.setdefault("_pass_values", {})
        kept = values.get(name)
        if kept is not None and kept[0] == key:
            return kept[1]
        value = compute()
        values[name] = (key, value)
        return value

    def score_all(self, users: Tensor) -> Tensor:
        """Score every item for each user: ``users (B,)`` -> ``(B, n_items)``.

        This fallback calls :meth:`forward` on chunks of items (at most ``2**20`` pairs a call);
        models with a factorised score override it with one matrix product. The result is a fresh
        tensor that callers may modify in place (for example to mask training items with -inf).
        """
        users = self._users(users)
        n_batch = users.numel()
        items = torch.arange(self.n_items, device=users.device)
        step = max(1, MAX_PAIRS_PER_CHUNK // max(n_batch, 1))
        chunks = []
        for start in range(0, self.n_items, step):
            chunk = items[start : start + step]
            pair_users = users.repeat_interleave(chunk.numel())
            pair_items = chunk.repeat(n_batch)
            chunks.append(self(pair_users, pair_items).reshape(n_batch, chunk.numel()))
        return torch.cat(chunks, dim=1)

    def pair_scores(self, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """Scores of positive and negative items for BPR-style losses.

        Args:
            users: ``(B,)`` user indices.
            pos: ``(B,)`` positive item indices.
            neg: ``(B,)`` negative item indices, or ``(B, K)`` for ``K`` negatives per user.

        Returns:
            ``(pos_scores (B,), neg_scores)`` with ``neg_scores`` shaped like ``neg``.
        """
        users, pos, neg = self._pair_args(users, pos, neg)
        pos_scores = self(users, pos)
        if neg.dim() == 2:
            expanded = users.unsqueeze(-1).expand_as(neg)
            neg_scores = self(expanded.reshape(-1), neg.reshape(-1)).reshape(neg.shape)
        else:
            neg_scores = self(users, neg)
        return pos_scores, neg_scores

    def regularization(self, users: Tensor, *items: Tensor) -> Tensor:
        """Penalty of the rows a batch touches, added by every loss of :mod:`recs_course.losses`.

        Args:
            users: ``(B,)`` the batch's users.
            *items: the batch's item arrays, each ``(B,)`` or ``(B, K)``: ``(items,)`` for the
                pointwise losses (MSE, BCE), ``(pos, neg)`` for BPR.

        Returns:
            A scalar tensor: 0 by default (MF and the NCF models are regularised through the
            optimiser's ``weight_decay``); the graph models return the L2 penalty of the batch's
            ego embeddings times ``reg``.
        """
        users, _ = self._item_args(users, items)
        return torch.zeros((), device=users.device)


# ---------------------------------------------------------------------------------------------
# Argument checks. They raise ValueError with a message that says what to pass instead.


def renamed_arguments(**renamed: str) -> Callable[[Callable], Callable]:
    """Decorate a constructor whose keyword arguments were renamed: passing an old name raises
    the ``TypeError`` Python would, followed by the hint (``renamed``: old name -> what to use
    now). The signature is the function's own (``functools.wraps``: ``inspect.signature`` and
    ``help`` show the real arguments); any other unknown name gets Python's plain error.
    """

    def decorate(function: Callable) -> Callable:
        owner = function.__qualname__.removesuffix(".__init__")

        @functools.wraps(function)
        def checked(*args: object, **kwargs: object) -> object:
            for name, hint in renamed.items():
                if name in kwargs:
                    raise TypeError(
                        f"{owner}() got an unexpected keyword argument {name!r}: {hint}"
                    )
            return function(*args, **kwargs)

        return checked

    return decorate


def check_probability(name: str, value: object) -> float:
    """Return a dropout probability in ``[0, 1)`` as a float (numpy numbers included), else
    raise ``ValueError``."""
    if not is_real_number(value):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the probability of dropping), got {value!r}")
    return value


def check_non_negative(name: str, value: object) -> float:
    """Return a finite number ``>= 0`` as a float (regularisation weights, standard deviations;
    numpy numbers included), else raise ``ValueError``."""
    if not is_real_number(value):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_layers(name: str, layers: object) -> tuple[int, ...]:
    """Return a non-empty tuple of positive layer sizes, else raise ``ValueError``."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(
            f"{name} must be a sequence of positive integers such as (64, 32, 16, 8), "
            f"got {layers!r}"
        )
    if not layers:
        raise ValueError(f"{name} needs at least 1 layer size, got {layers!r}")
    return tuple(check_positive_int(f"{name}[{k}]", size) for k, size in enumerate(layers))


def check_y_range(y_range: object, name: str = "y_range") -> tuple[float, float] | None:
    """Return ``None`` or a ``(low, high)`` pair of finite floats with ``low < high``.

    ``name`` names the argument in messages (``y_range``, AutoRec's ``clip``)."""
    if y_range is None:
        return None
    if isinstance(y_range, np.ndarray) and y_range.ndim == 1:
        y_range = tuple(y_range.tolist())
    if isinstance(y_range, (str, bytes)) or not isinstance(y_range, Sequence) or len(y_range) != 2:
        raise ValueError(f"{name} must be None or a pair (low, high), got {y_range!r}")
    if not all(is_real_number(v) for v in y_range):
        raise ValueError(
            f"{name} must be a pair of numbers (low, high) such as (1.0, 5.0), got {y_range!r}"
        )
    low, high = (float(v) for v in y_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high, got {y_range!r}")
    return low, high


def check_real_dtype(name: str, dtype: object) -> None:
    """Refuse a dtype that is not real numbers (complex, object, strings) with a ``ValueError``.

    Accepts bool, integer and floating dtypes, numpy's or torch's. A complex matrix would lose
    its imaginary part in the float32 conversion (numpy's ``ComplexWarning`` on stderr), an
    object or string array fails deep inside scipy.
    """
    if isinstance(dtype, torch.dtype):
        bad = dtype.is_complex
    else:
        try:
            bad = np.dtype(dtype).kind not in "biuf"  # type: ignore[arg-type]
        except TypeError:
            bad = True
    if bad:
        raise ValueError(
            f"{name} must hold real numbers (bool, integer or float), got dtype {dtype}: convert "
            "it, e.g. with .astype(numpy.float32) or .float(), after checking where it came from"
        )


#: Modes of the value check of :func:`check_indices` (see :func:`index_checks`).
INDEX_CHECK_MODES = ("auto", "always", "never")
#: Environment variable read when no :func:`index_checks` block is active.
INDEX_CHECKS_ENV = "RECS_COURSE_INDEX_CHECKS"
_index_check_mode: str | None = None  # set by index_checks(); None: the environment, else "auto"

_ALWAYS_HINT = "run with recs_course.models.index_checks('always') to see the values"
_INDEX_HINT = (
    "indices are 0-based (a negative index does not count from the end): encode raw ids with "
    "recs_course.data.IdEncoder and build the model with its n_users and n_items"
)


def _check_mode(mode: object) -> str:
    if mode not in INDEX_CHECK_MODES:
        raise ValueError(
            f"the index check mode must be one of {INDEX_CHECK_MODES}, got {mode!r} (from "
            f"index_checks() or the {INDEX_CHECKS_ENV} environment variable)"
        )
    return str(mode)


@contextlib.contextmanager
def index_checks(mode: str) -> Iterator[None]:
    """Choose, inside a ``with`` block, whether :func:`check_indices` checks index *values*.

    - ``"auto"`` (the default): tensors on the CPU are checked (one ``aminmax``, no device
      synchronisation); tensors on an accelerator are not read back, because that would make
      the CPU wait for the device on every batch, which the training loop avoids (it
      synchronises once per epoch). On CUDA the range is asserted on the device instead
      (``torch._assert_async``: no wait; a bad index stops the program with CUDA's device-side
      assertion rather than silently reading another row); on MPS only dtype and shape are
      checked. The evaluators convert their inputs on the CPU, so they are always checked.
    - ``"always"``: accelerator tensors too (one synchronisation per checked tensor); use it
      while debugging a model on a GPU.
    - ``"never"``: no value check.

    dtype and shape are checked in every mode (they cost nothing). Without a ``with`` block the
    mode comes from the ``RECS_COURSE_INDEX_CHECKS`` environment variable, else ``"auto"``.
    """
    global _index_check_mode
    previous, _index_check_mode = _index_check_mode, _check_mode(mode)
    try:
        yield
    finally:
        _index_check_mode = previous


_compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # torch >= 2.3


def _mode() -> str:
    """The check mode in force: ``"never"`` inside ``torch.compile`` or tracing (no ``.item()``
    in a graph), else :func:`index_checks`' block, else the environment, else ``"auto"``."""
    if _compiling() or torch.jit.is_tracing():
        return "never"
    return _index_check_mode or _check_mode(os.environ.get(INDEX_CHECKS_ENV) or "auto")


def value_range(
    tensor: Tensor, within: Callable[[Tensor, Tensor], Tensor], message: str
) -> tuple[float, float] | None:
    """The value check of :func:`index_checks`' policy, for any tensor (indices, BCE labels).

    Returns ``(min, max)`` read back where values are checked (CPU tensors, or ``"always"``):
    the caller compares them and raises its own ``ValueError``. Otherwise returns ``None``,
    after asserting ``within(min, max)`` on the device for CUDA tensors in ``"auto"`` mode
    (:func:`assert_within`).
    """
    mode = _mode()
    if tensor.numel() == 0 or mode == "never":
        return None
    if mode == "always" or tensor.device.type == "cpu":
        low, high = torch.aminmax(tensor)
        if tensor.device.type == "cpu":
            return low.item(), high.item()
        return tuple(torch.stack((low, high)).tolist())  # one synchronisation for both
    if tensor.device.type == "cuda":
        assert_within(tensor, within, message)
    return None


def assert_within(tensor: Tensor, within: Callable[[Tensor, Tensor], Tensor], message: str) -> None:
    """Assert ``within(min, max)`` on the tensor's device, without a synchronisation.

    On CUDA a failure stops the program with a device-side assertion (CUDA's own error, which
    ends the CUDA context: restart the kernel) instead of silently going on (a negative index
    would read another row); re-run with ``index_checks("always")`` for the ``ValueError`` that
    names the values. On the CPU the same assertion raises ``RuntimeError`` at once.
    """
    low, high = torch.aminmax(tensor)
    torch._assert_async(within(low, high), message)


def _index_bounds(upper: int | None) -> tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """``[0, upper)`` as text and as a test of ``(min, max)`` tensors."""
    if upper is None:
        return "[0, inf)", lambda low, high: low >= 0
    return f"[0, {upper})", lambda low, high: (low >= 0) & (high < upper)


def _assert_in_range_async(tensor: Tensor, upper: int | None, name: str) -> None:
    """The device-side check of indices (see :func:`assert_within`)."""
    bound, within = _index_bounds(upper)
    assert_within(tensor, within, f"{name} must lie in {bound}: {_ALWAYS_HINT}")


def _as_tensor(name: str, values: object, device: torch.device | str | None) -> Tensor:
    """Indices given as an array, a list, a Series or a scalar, as an int64 tensor (a copy).

    The conversion is the data layer's (``recs_course._arrays``): exact or a ``ValueError``
    (integral floats such as ``3.0`` are accepted, ``1.5``, NaN, NA and ``2**63`` are not).
    """
    if isinstance(values, (str, bytes, dict, set)) or values is None:
        raise ValueError(
            f"{name} must be integer indices (a tensor, array or list of ints), got "
            f"{type(values).__name__}"
        )
    try:
        array, label = _numpy_values(values, name)
    except (TypeError, ValueError) as exc:  # e.g. ragged nested lists, missing values
        if "missing value" in str(exc):
            raise
        raise ValueError(f"{name} must be integer indices, got {values!r:.80}") from exc
    if array.dtype == bool:
        raise ValueError(
            f"{name} must hold integer indices, got booleans: for a mask use "
            "numpy.flatnonzero(mask) to get the indices"
        )
    shape = array.shape
    array = _exact_int64(array, name, label).reshape(shape)
    return torch.from_numpy(array).to(device or "cpu")


def check_indices(
    name: str,
    values: object,
    upper: int | None,
    *,
    ndim: int | tuple[int, ...] | None = 1,
    device: torch.device | str | None = None,
    what: str | None = None,
) -> Tensor:
    """Check that ``values`` are integer indices in ``[0, upper)`` and return them as a tensor.

    The one index check of the package, used at the public entry points of every model and
    evaluator. Checks, each with a ``ValueError`` naming ``name``:

    - the type and dtype: integers (a bool mask or float tensor is refused); ``int32`` and
      ``int64`` tensors are returned as they are (no copy), other integer dtypes as ``int64``
      (``uint8`` tensors would index as masks); arrays and lists become tensors on ``device``;
    - the number of dimensions, one of ``ndim`` (``None``: any);
    - the range, with one ``torch.aminmax`` per tensor: ``0 <= values < upper`` (``upper=None``:
      only ``values >= 0``). Negative indices are refused, never counted from the end. On an
      accelerator this needs a synchronisation and is skipped unless asked for, see
      :func:`index_checks`.

    Args:
        name: the argument's name, for messages.
        values: a tensor, numpy array, list or scalar of indices.
        upper: the number of valid indices, or ``None``.
        ndim: allowed numbers of dimensions.
        device: where non-tensor ``values`` are put (default the CPU).
        what: what ``upper`` is, for the message (e.g. ``"n_users = 943"``).
    """
    tensor = values if isinstance(values, Tensor) else _as_tensor(name, values, device)
    if tensor.layout != torch.strided:
        raise ValueError(f"{name} must be a dense tensor of indices, got layout {tensor.layout}")
    dtype = tensor.dtype
    if dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer indices, got a bool tensor: for a mask use "
            "mask.nonzero().squeeze(1) to get the indices"
        )
    if dtype.is_floating_point or dtype.is_complex:
        if tensor.numel():
            raise ValueError(
                f"{name} must hold integer indices, got dtype {dtype}: convert whole numbers "
                "with .long() (and check where fractional values came from)"
            )
        tensor = tensor.long()  # an empty float tensor, e.g. torch.tensor([])
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if tensor.dim() not in allowed:
            dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(
                f"{name} must be a {dims} tensor of indices, got shape {tuple(tensor.shape)}"
            )
    if dtype not in (torch.int64, torch.int32):
        tensor = tensor.long()
    bound, within = _index_bounds(upper)
    found = value_range(tensor, within, f"{name} must lie in {bound}: {_ALWAYS_HINT}")
    if found is not None:
        low, high = found
        if low < 0 or (upper is not None and high >= upper):
            where = f" ({what})" if what else ""
            raise ValueError(
                f"{name} must lie in {bound}{where}, found values in [{low}, {high}]: {_INDEX_HINT}"
            )
    return tensor


def check_pair_shapes(users: Tensor, items: Tensor, items_name: str = "items") -> None:
    """Raise ``ValueError`` unless ``users`` and ``items`` have the same shape (no device sync)."""
    if users.shape != items.shape:
        raise ValueError(
            f"users and {items_name} must have the same shape, got {tuple(users.shape)} and "
            f"{tuple(items.shape)}"
        )


def concat_mlp_scores(
    user_vectors: Tensor,
    item_vectors: Tensor,
    first: nn.Linear,
    rest: nn.Module,
    max_pairs: int = MAX_PAIRS_PER_CHUNK,
) -> Tensor:
    """``rest(first([u ; i]))`` for every (user, item) pair without building the concatenation.

    ``first([u ; i]) = W_u u + W_i i + b``, so the first layer costs one product per user and one
    per item instead of one per pair; ``rest`` runs on ``(B, chunk, h)`` blocks of at most
    ``max_pairs`` pairs. Valid whenever nothing acts on ``[u ; i]`` before ``first`` (no input
    dropout in training mode).

    Args:
        user_vectors: ``(B, d_u)``; item_vectors: ``(I, d_i)``.
        first: ``Linear(d_u + d_i, h)``; rest: maps ``(..., h)`` to ``(..., k)``.

    Returns:
        ``(B, I, k)``.
    """
    split = user_vectors.shape[-1]
    user_part = user_vectors @ first.weight[:, :split].T + first.bias  # (B, h)
    item_part = item_vectors @ first.weight[:, split:].T  # (I, h)
    step = max(1, max_pairs // max(user_part.shape[0], 1))
    blocks = [
        rest(user_part.unsqueeze(1) + item_part[start : start + step].unsqueeze(0))
        for start in range(0, item_part.shape[0], step)
    ]
    return torch.cat(blocks, dim=1)


def scale_to_range(logits: Tensor, y_range: tuple[float, float] | None) -> Tensor:
    """``low + (high - low) * sigmoid(logits)`` (fastai's scaled sigmoid), or ``logits``."""
    if y_range is None:
        return logits
    low, high = y_range
    return torch.sigmoid(logits) * (high - low) + low
