"""Losses against their textbook formulas, and their numerical stability where those fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recs_course.losses import (
    LOSSES,
    PartialCreditBPR,
    bce_loss,
    bpr_loss,
    get_loss,
    masked_mse_loss,
    mse_loss,
)


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


# --------------------------------------------------------------------------------------------
# Partial credit: hand-worked cases. With s_pos - s_neg = ln 3, sigmoid = 3/4:
#   BPR              -ln(3/4)                         = 0.2876821
#   weight, c = 0.4  0.6 * 0.2876821                  = 0.1726092
#   target, t = 0.6  -(0.6 ln(3/4) + 0.4 ln(1/4))     = 0.1726092 + 0.5545177 = 0.7271269
# and at s_pos = s_neg (sigmoid 1/2), c = 0.5:  0.5 * ln 2 = 0.3465736 (weight),
#                                                ln 2 = 0.6931472 whatever t (target).

LN3 = math.log(3.0)
# items 0..4; labels (first genre): 0, 0, 1, -1 (unknown), -1
LABELS = torch.tensor([0, 0, 1, -1, -1])


def _credit_model() -> FixedScores:
    return FixedScores(torch.tensor([LN3, 0.0, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize(
    ("neg", "mode", "expected"),
    [
        (1, "weight", 0.1726092),  # same label: credit 0.4
        (2, "weight", 0.2876821),  # other label: plain BPR
        (3, "weight", 0.2876821),  # unknown label never matches
        (1, "target", 0.7271269),
        (2, "target", 0.2876821),
    ],
)
def test_partial_credit_on_hand_worked_cases(neg, mode, expected):
    loss = PartialCreditBPR(LABELS, 0.4, mode=mode)
    batch = (torch.tensor([0]), torch.tensor([0]), torch.tensor([neg]))
    assert loss(_credit_model(), batch).item() == pytest.approx(expected, abs=1e-6)


def test_partial_credit_with_two_fields_and_a_multi_hot_matrix():
    genres = torch.tensor(  # items share a genre when a column is True in both rows
        [[1, 0, 1], [0, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.bool
    )
    decade = torch.tensor([5, 5, 5, -1])
    loss = PartialCreditBPR({"genre": genres, "decade": decade}, {"genre": 0.3, "decade": 0.2})
    model = FixedScores(torch.zeros(4))  # every difference 0: each term is (1 - c) ln 2
    users = torch.zeros(3, dtype=torch.long)
    pos, neg = torch.tensor([0, 0, 2]), torch.tensor([[1, 2], [3, 1], [3, 0]])
    # credits: (0,1) genre+decade 0.5, (0,2) decade 0.2 | (0,3) 0, (0,1) 0.5 | (2,3) 0, (2,0) 0.2
    credit = torch.tensor([[0.5, 0.2], [0.0, 0.5], [0.0, 0.2]])
    torch.testing.assert_close(loss.credit(pos, neg), credit)
    expected = ((1 - credit) * math.log(2)).mean().item()  # the 6 terms averaged
    assert loss(model, (users, pos, neg)).item() == pytest.approx(expected, abs=1e-6)
    single = loss(model, (users[:1], pos[:1], neg[:1, 0]))
    assert single.item() == pytest.approx(0.3465736, abs=1e-6)


def test_no_credit_is_bpr_and_the_models_regularization_is_added():
    scores = torch.tensor([2.0, 0.5, -1.0, 1.0, 0.0])
    users, pos = torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 3])
    batch = (users, pos, torch.tensor([[2, 4], [4, 2], [0, 1]]))
    distinct = torch.arange(5)  # every item its own label: no match between pos and neg
    for mode in PartialCreditBPR.MODES:
        loss = PartialCreditBPR(distinct, 1.0, mode=mode)
        assert loss(FixedScores(scores), batch).item() == pytest.approx(
            bpr_loss(FixedScores(scores), batch).item(), rel=1e-6
        )
        model = PairModel(scores, reg=0.25)
        assert loss(model, batch).item() == pytest.approx(bpr_loss(model, batch).item(), rel=1e-6)
        assert model.pair_calls == 2
    # a full match (weight 1) is no mistake under "weight"
    same = PartialCreditBPR(torch.zeros(5, dtype=torch.long), 1.0)
    assert same(FixedScores(scores), batch).item() == 0.0


def test_partial_credit_gradient_pushes_a_same_genre_negative_less():
    model = FixedScores(torch.tensor([0.0, 0.0, 0.0]))
    loss = PartialCreditBPR(torch.tensor([0, 0, 1]), 0.4)
    batch = (torch.zeros(2, dtype=torch.long), torch.tensor([0, 0]), torch.tensor([1, 2]))
    loss(model, batch).backward()
    grad = model.table.grad
    assert grad[1].item() == pytest.approx(0.6 * grad[2].item())  # item 1 shares the genre
    assert grad[1].item() > 0 and grad[0].item() < 0  # still pushed down, the positive up


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PartialCreditBPR(LABELS, 0.4, mode="soft"), "mode must be one of"),
        (lambda: PartialCreditBPR(LABELS.float(), 0.4), "float one-hot matrix: use .bool"),
        (lambda: PartialCreditBPR(LABELS.tolist(), 0.4), "must be a tensor"),
        (lambda: PartialCreditBPR(torch.zeros(5, 2, 2, dtype=torch.bool), 0.4), "shape"),
        (lambda: PartialCreditBPR(LABELS, 1.5), "sum to 1.5"),
        (lambda: PartialCreditBPR(LABELS, -0.1), "weight of metadata"),
        (lambda: PartialCreditBPR(LABELS, "0.4"), "weight of metadata"),
        (lambda: PartialCreditBPR(LABELS, {"a": 0.4}), "must be a number"),
        (lambda: PartialCreditBPR({"a": LABELS}, 0.4), "same keys"),
        (lambda: PartialCreditBPR({"a": LABELS, "b": LABELS}, {"a": 0.6, "b": 0.6}), "sum to 1.2"),
        (lambda: PartialCreditBPR({"a": LABELS, "b": LABELS[:3]}, {"a": 0.1, "b": 0.1}), "rows"),
        (lambda: PartialCreditBPR({}, {}), "at least one field"),
    ],
)
def test_partial_credit_arguments_are_checked(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_partial_credit_checks_its_batch_against_the_metadata():
    from recs_course.models import MF

    loss = PartialCreditBPR(LABELS, 0.4)
    with pytest.raises(ValueError, match="metadata has 5 rows but the model 7 items"):
        loss(MF(2, 7, dim=2), (torch.tensor([0]), torch.tensor([1]), torch.tensor([2])))
    with pytest.raises(ValueError, match=r"neg must lie in \[0, 5\)"):
        loss.credit(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(ValueError, match="expects a batch of 3 tensors"):
        loss(_credit_model(), (torch.tensor([0]), torch.tensor([0])))
    assert "0.4" in repr(loss) and "weight" in repr(loss)
