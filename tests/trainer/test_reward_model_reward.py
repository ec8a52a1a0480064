"""The reward model as a REINFORCE reward: the metric-shaped adapter, the task wrapper driving
a real REINFORCE step, and policy samples as candidates."""

import torch

from trainer.configs import DetectionTaskConfig, ModelConfig, RewardModelConfig, TuneConfig
from trainer.data.detection import ShapesStream
from trainer.data.shapes import ShapesConfig
from trainer.models.pix2seq import Pix2SeqModel
from trainer.reward_model.candidates import make_preference_data, policy_source
from trainer.reward_model.model import RewardModel
from trainer.reward_model.reward import LearnedRewardTask, learned_detection_reward
from trainer.rewards.detection import detection_reward
from trainer.tasks.detection import DetectionTask
from trainer.train.mle import make_optimizer
from trainer.train.reinforce import reinforce_step

RM = RewardModelConfig(num_classes=8, image_size=32, width=8, stages=2)
POLICY = ModelConfig(image_size=32, d_model=32, heads=2, encoder_layers=1, decoder_layers=1)
TASK = DetectionTaskConfig(coord_bins=16, max_boxes=3)
SCENES = ShapesConfig(image_size=32, max_objects=3, min_object_size=0.2, max_object_size=0.5)


def test_adapter_scores_with_the_model_and_keeps_the_metric_beside_it():
    torch.manual_seed(0)
    model = RewardModel(RM)
    batch = ShapesStream(SCENES).next_batch(2)
    n = 3  # samples per image, image-major
    pred_boxes = batch.boxes.repeat_interleave(n, 0) + 0.02 * torch.randn(6, *batch.boxes.shape[1:])
    pred_classes = batch.classes.clamp_min(0).repeat_interleave(n, 0)
    pred_valid = batch.valid.repeat_interleave(n, 0)
    gt = [t.repeat_interleave(n, 0) for t in (batch.boxes, batch.classes, batch.valid)]
    gt[2] = gt[2].clone()
    gt[2][3:] = False  # the second image has no ground truth
    out = learned_detection_reward(model, scale=2.0)(pred_boxes, pred_classes, pred_valid, *gt,
                                                     images=batch.images)
    metric = detection_reward(pred_boxes, pred_classes, pred_valid, *gt)
    expected = 2.0 * model.score(batch.images, pred_boxes, pred_classes, pred_valid)
    assert out.reward.shape == (6,) and torch.allclose(out.reward, expected)
    assert torch.equal(out.pred_iou, metric.pred_iou) and torch.equal(out.matched, metric.matched)
    assert torch.equal(out.metric_reward, metric.reward)
    assert out.has_gt.tolist() == [True] * 3 + [False] * 3
    assert (out.pred_iou[3:] == 0).all()


def test_learned_task_drives_a_reinforce_step():
    torch.manual_seed(0)
    task = DetectionTask(TASK, num_classes=8)
    policy = Pix2SeqModel(POLICY, task.spec)
    reward_model = RewardModel(RM)
    learned = LearnedRewardTask(task, reward_model)
    batch = ShapesStream(SCENES).next_batch(2)
    before = [p.detach().clone() for p in policy.parameters()]
    rm_before = [p.detach().clone() for p in reward_model.parameters()]
    optimizer = make_optimizer(policy, 1e-3, 0.0)
    config = TuneConfig(batch_size=2, samples=3)
    metrics = reinforce_step(policy, optimizer, learned, batch, config,
                             torch.Generator().manual_seed(0))
    assert {"reward", "metric_reward", "pg_loss", "aux_loss"} <= set(metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
    # The reward model is only read, never trained by the policy's step.
    assert all(torch.equal(a, b) for a, b in
               zip(rm_before, reward_model.parameters(), strict=True))
    # Same sequences, same reward as scoring them directly.
    tokens = policy.sample(batch.images, 3, generator=torch.Generator().manual_seed(1))[0]
    scored = learned.reward(tokens, batch, 3)
    decoded = task.codec.decode(tokens)
    direct = reward_model.score(batch.images, decoded.boxes, decoded.classes, decoded.valid)
    assert torch.allclose(scored.reward, direct)
    assert scored.select(torch.tensor([0, 4])).metric_reward.shape == (2,)


def test_policy_samples_as_candidates():
    torch.manual_seed(0)
    task = DetectionTask(TASK, num_classes=8)
    policy = Pix2SeqModel(POLICY, task.spec).eval()
    data = make_preference_data(6, noise=0.0, seed=0,
                                candidate_source=policy_source(policy, task.codec),
                                examples=ShapesStream(SCENES), image_size=32)
    assert len(data) == 6 and data.a.boxes.shape[1:] == (3, 4)
    assert ((data.a.boxes >= 0) & (data.a.boxes <= 1)).all()


def test_boxes_on_images_without_ground_truth_do_not_train_the_confidence():
    torch.manual_seed(0)
    task = DetectionTask(TASK, num_classes=8)
    policy = Pix2SeqModel(POLICY, task.spec)
    learned = LearnedRewardTask(task, RewardModel(RM))
    batch = ShapesStream(SCENES).next_batch(2)
    tokens = policy.sample(batch.images, 2, generator=torch.Generator().manual_seed(1))[0]
    logits = policy.logits(batch.images, tokens)
    scored = learned.reward(tokens, batch, 2)
    # With ground truth on every image, the task's own confidence loss.
    assert scored.has_gt.all() and scored.decoded.valid.any()
    assert torch.equal(learned.aux_loss(logits, scored), task.aux_loss(logits, scored))
    # Without it (a project's own images), no IoU target: no loss, and no hit rate logged.
    batch.valid[:] = False
    unlabeled = learned.reward(tokens, batch, 2)
    assert learned.aux_loss(logits, unlabeled).item() == 0.0
    assert "hit_rate" not in unlabeled.metrics()


def test_learned_rewards_to_go_come_from_the_reward_model_alone():
    torch.manual_seed(0)
    reward_model = RewardModel(RM)
    learned = LearnedRewardTask(DetectionTask(TASK, num_classes=8), reward_model)
    policy = Pix2SeqModel(POLICY, learned.spec)
    batch = ShapesStream(SCENES).next_batch(2)
    tokens = policy.sample(batch.images, 2, generator=torch.Generator().manual_seed(1))[0]
    scored = learned.reward(tokens, batch, 2)
    to_go = learned.rewards_to_go(tokens, batch, 2, scored)
    assert to_go.shape == tokens.shape
    # Box j's tokens: the sample's score minus the score of boxes 0..j-1 alone.
    decoded = scored.decoded
    images = batch.images.repeat_interleave(2, 0)
    for j in range(decoded.valid.shape[1]):
        if 6 * j >= tokens.shape[1]:
            break
        prefix = decoded.valid & (torch.arange(decoded.valid.shape[1]) < j)
        before = reward_model.score(images, decoded.boxes, decoded.classes, prefix)
        assert torch.allclose(to_go[:, 6 * j], scored.reward - before, atol=1e-5)
    # Ground truth never enters it: wiping it changes nothing.
    batch.valid[:] = False
    assert torch.allclose(learned.rewards_to_go(tokens, batch, 2, scored), to_go)
