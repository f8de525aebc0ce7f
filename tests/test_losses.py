"""Losses against their textbook formulas, and their numerical stability where those fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recs_course.losses import LOSSES, bce_loss, bpr_loss, get_loss, masked_mse_loss, mse_loss


class FixedScores(nn.Module):
    """score(user, item) = table[item]: lets a test choose the scores exactly."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(scores.clone().float())

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.table[items]


class PairModel(FixedScores):
    """Follows the full interface: pair_scores shifts scores, regularization is a constant."""

    def __init__(self, scores: torch.Tensor, reg: float) -> None:
        super().__init__(scores)
        self.reg = reg
        self.pair_calls = 0

    def pair_scores(self, users, pos, neg):
        self.pair_calls += 1
        return self.table[pos] + 1.0, self.table[neg]

    def regularization(self, users, pos, neg):
        return torch.tensor(self.reg)


def test_mse_equals_mean_squared_difference():
    scores = torch.tensor([3.0, 4.5, 1.0, 2.0])
    model = FixedScores(scores)
    users = torch.zeros(4, dtype=torch.long)
    items = torch.tensor([0, 1, 2, 3])
    ratings = torch.tensor([4.0, 4.0, 2.0, 2.0], dtype=torch.float64)  # cast to the model's dtype
    loss = mse_loss(model, (users, items, ratings))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(((1.0) ** 2 + 0.5**2 + 1.0**2 + 0.0) / 4)


def test_pointwise_losses_refuse_a_column_of_scores():
    class Column(FixedScores):
        def forward(self, users, items):
            return self.table[items].unsqueeze(1)  # (B, 1) would broadcast to (B, B)

    model = Column(torch.ones(3))
    batch = (torch.zeros(3, dtype=torch.long), torch.arange(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3, 1\).*\(B,\)"):
        mse_loss(model, batch)
    with pytest.raises(ValueError, match="shape"):
        bce_loss(model, batch)


def test_bce_equals_sigmoid_then_bce_on_moderate_logits():
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5])
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    model = FixedScores(logits)
    batch = (torch.zeros(5, dtype=torch.long), torch.arange(5), labels)
    naive = nn.BCELoss()(torch.sigmoid(logits), labels)
    assert bce_loss(model, batch).item() == pytest.approx(naive.item(), rel=1e-6)


def test_bce_is_finite_on_extreme_logits_where_the_naive_formula_is_not():
    logits = torch.tensor([100.0, -200.0, 100.0])
    labels = torch.tensor([0.0, 1.0, 1.0])
    p = torch.sigmoid(logits)
    naive = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    assert not torch.isfinite(naive).all()

    model = FixedScores(logits)
    loss = bce_loss(model, (torch.zeros(3, dtype=torch.long), torch.arange(3), labels))
    # exact values: softplus(100) = 100, softplus(200) = 200, softplus(-100) ~ 0
    assert loss.item() == pytest.approx((100.0 + 200.0 + 0.0) / 3, rel=1e-6)
    loss.backward()
    grad = model.table.grad
    assert torch.isfinite(grad).all()
    # d/ds of the mean BCE is (sigmoid(s) - y) / B
    assert torch.allclose(grad, (torch.sigmoid(logits) - labels) / 3, atol=1e-7)


def test_bpr_equals_minus_log_sigmoid_of_the_difference():
    pos = torch.tensor([2.0, 0.5, -1.0])
    neg = torch.tensor([1.0, 1.5, -0.2])
    model = FixedScores(torch.cat([pos, neg]))
    batch = (torch.zeros(3, dtype=torch.long), torch.arange(3), torch.arange(3, 6))
    expected = -torch.log(torch.sigmoid(pos - neg)).mean()
    assert bpr_loss(model, batch).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bpr_is_finite_for_a_large_negative_difference():
    model = FixedScores(torch.tensor([-150.0, 50.0]))  # d = -200
    batch = (torch.zeros(1, dtype=torch.long), torch.tensor([0]), torch.tensor([1]))
    naive = -torch.log(torch.sigmoid(torch.tensor(-200.0)))
    assert math.isinf(naive.item())
    loss = bpr_loss(model, batch)
    assert loss.item() == pytest.approx(200.0, rel=1e-6)
    loss.backward()
    assert torch.isfinite(model.table.grad).all()


def test_bpr_uses_pair_scores_and_adds_regularization():
    model = PairModel(torch.tensor([0.0, 0.0]), reg=0.25)
    batch = (torch.zeros(1, dtype=torch.long), torch.tensor([0]), torch.tensor([1]))
    loss = bpr_loss(model, batch)
    assert model.pair_calls == 1
    # pair_scores adds 1 to the positive score: -logsigmoid(1) + 0.25
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))) + 0.25, rel=1e-6)


def test_masked_mse_delegates_to_the_model():
    class Rows(nn.Module):
        def masked_loss(self, rows):
            return rows.float().sum()

    assert masked_mse_loss(Rows(), (torch.tensor([1, 2, 3]),)).item() == 6.0
    with pytest.raises(ValueError, match="masked_loss"):
        masked_mse_loss(FixedScores(torch.ones(2)), (torch.tensor([0]),))


def test_batches_of_the_wrong_arity_are_refused():
    with pytest.raises(ValueError, match="3 tensors"):
        mse_loss(FixedScores(torch.ones(2)), (torch.tensor([0]), torch.tensor([0])))


def test_get_loss():
    for name, fn in LOSSES.items():
        assert get_loss(name) is fn
    assert get_loss("BPR") is bpr_loss
    assert get_loss("masked-mse") is masked_mse_loss

    def custom(model, batch):
        return torch.tensor(0.0)

    assert get_loss(custom) is custom
    with pytest.raises(ValueError, match=r"'hinge'.*\['bce', 'bpr', 'masked_mse', 'mse'\]"):
        get_loss("hinge")


def test_half_precision_scores_are_compared_in_float32():
    model = FixedScores(torch.tensor([0.1, 0.2]))
    model.table.data = model.table.data.to(torch.bfloat16)
    ratings = torch.tensor([0.1001, 0.2001])  # differences below bfloat16's resolution
    loss = mse_loss(model, (torch.zeros(2, dtype=torch.long), torch.arange(2), ratings))
    assert loss.dtype == torch.float32
    expected = ((model.table.data.float() - ratings) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


class PenalisedScores(FixedScores):
    """A model with a penalty of the rows a batch touches: records what each loss passes."""

    def __init__(self, scores: torch.Tensor, reg: float) -> None:
        super().__init__(scores)
        self.reg = reg
        self.calls: list[int] = []

    def regularization(self, users, *items):
        self.calls.append(len(items))
        return self.reg * sum(self.table[i].pow(2).sum() for i in items)


def test_every_pair_loss_adds_the_models_regularization():
    model = PenalisedScores(torch.tensor([0.5, -1.0, 2.0]), reg=0.1)
    users, items = torch.zeros(3, dtype=torch.long), torch.arange(3)
    penalty = 0.1 * (0.25 + 1.0 + 4.0)
    labels, ratings = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 2.5])
    expected_bce = F.binary_cross_entropy_with_logits(model.table, labels) + penalty
    expected_mse = F.mse_loss(model.table, ratings) + penalty
    assert bce_loss(model, (users, items, labels)).item() == pytest.approx(expected_bce.item())
    assert mse_loss(model, (users, items, ratings)).item() == pytest.approx(expected_mse.item())
    bpr = bpr_loss(model, (users, items, torch.tensor([2, 0, 1])))
    expected_bpr = -F.logsigmoid(model.table - model.table[[2, 0, 1]]).mean() + 2 * penalty
    assert bpr.item() == pytest.approx(expected_bpr.item())
    assert model.calls == [1, 1, 2]  # (users, items) pointwise, (users, pos, neg) for BPR


def test_the_base_classs_zero_penalty_is_not_even_called():
    from recs_course.models import MF

    model = MF(3, 4, dim=2)
    calls = []
    original = model.regularization
    model.regularization = lambda *args: calls.append(args) or original(*args)
    batch = (torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([1.0, 0.0]))
    reference = F.binary_cross_entropy_with_logits(model(*batch[:2]), batch[2])
    assert bce_loss(model, batch).item() == reference.item()
    assert calls == []  # Recommender.regularization is 0: no call, no second index check


def test_bpr_with_k_negatives_on_a_model_without_pair_scores():
    scores = torch.tensor([2.0, 0.5, -1.0, 1.0, 0.0])
    model = FixedScores(scores)
    users, pos = torch.zeros(2, dtype=torch.long), torch.tensor([0, 1])
    neg = torch.tensor([[2, 3, 4], [4, 4, 2]])
    naive = torch.stack(
        [-F.logsigmoid(scores[p] - scores[n]) for p, row in zip(pos, neg, strict=True) for n in row]
    ).mean()
    assert bpr_loss(model, (users, pos, neg)).item() == pytest.approx(naive.item(), rel=1e-6)
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, K\)"):
        bpr_loss(model, (users, pos, neg[:1]))
