"""CleftNet: find the chondrolabral cleft, then read the fluid's passage through it over time.

The sign is local (a cleft ~14 x 11 pixels of a 96 x 96 frame) and temporal (fluid crossing
it, joint side to capsular side, while the joint is loaded). A whole-frame CNN has to find
both from one label per clip; CleftNet splits the work:

    input    clip x (B, 1, T, H, W) in [0, 1]
    locate   mean and spread of the clip over time (B, 2, H, W) -> 2D CNN
             -> cleft heatmap logits (B, h, w), h = H / 4; spatial softmax; soft-argmax
             -> cleft centre (B, 2) in [-1, 1] (x, y), as ``affine_grid`` counts
    crop     a window of ``crop`` x ``crop`` pixels around the centre from every frame, and its
             frame difference                                        -> (B, 2, T, c, c)
    read     (2+1)D conv stages at full temporal resolution, spatial stride 2 each
             -> (B, C, T, c/8, c/8) flattened per frame (keeps *where* in the window: the
             joint side and the capsular side are different features)
    context  the whole frame at H / 4 through a small (2+1)D stack, pooled per frame
             (the femur's loading motion)                            -> (B, C_g, T)
    time     dilated temporal convs over [read, context] per frame      -> (B, D, T)
    decide   per-frame evidence e_t and attention a_t (softmax over T): multiple-instance
             pooling, logit = sum_t a_t e_t; relevance r_t = T a_t e_t (mean = logit)

Auxiliary heads (used only in training, :mod:`labral.train.auxiliary`) read the same
features: the cleft heatmap, the fluid extent in the cleft per frame, the loading velocity
per frame and the clip's scenario (which way, and when, fluid moves); and the attention is
taught to rest on the frames where fluid is in the cleft, so the relevance peak marks them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labral.errors import BadConfigError
from labral.models.compact import Conv2Plus1d
from labral.models.layers import check_widths, make_act, make_norm, with_frame_difference

#: Scenario classes of the auxiliary scenario head (``labral.train.auxiliary.SCENARIOS``).
N_SCENARIOS = 8


def _conv2plus1d(c_in: int, c_out: int, stride: int, norm: str, act: str) -> nn.Sequential:
    """The compact net's (2+1)D conv (spatial stride (1, s, s)), then norm and activation."""
    conv = Conv2Plus1d(c_in, c_out, (1, stride, stride), norm, act)
    return nn.Sequential(*conv, make_norm(norm, c_out), make_act(act))


class CleftNet(nn.Module):
    """Locate the cleft, crop it from every frame, decide from its evidence over time.

    Args:
        in_channels: C of the input clip (1).
        crop: side of the window read around the cleft, pixels of the input frame (a
            multiple of 8).
        widths: channels of the three read stages.
        context_width: channels of the whole-frame context branch.
        temporal_width: channels of the temporal convs.
        dilations: dilation of each temporal conv (kernel 3).
        norm: ``batch`` | ``instance`` | ``group`` | ``none``.
        act: ``relu`` | ``gelu`` | ``silu`` | ``leaky_relu``.
        dropout: dropout before the evidence and attention heads.
        init_weights: a local state dict to start from (loaded by ``labral train``).

    Raises:
        BadConfigError: a crop that is not a positive multiple of 8, or not three widths.
    """

    def __init__(
        self,
        in_channels: int = 1,
        crop: int = 32,
        widths: tuple[int, ...] | list[int] = (24, 48, 64),
        context_width: int = 32,
        temporal_width: int = 96,
        dilations: tuple[int, ...] | list[int] = (1, 2, 4),
        norm: str = "batch",
        act: str = "relu",
        dropout: float = 0.2,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        if crop < 8 or crop % 8:
            raise BadConfigError(f"model.crop={crop} must be a positive multiple of 8")
        widths = check_widths(widths)
        if len(widths) != 3:
            raise BadConfigError(f"model.widths={widths} needs three widths, one per read stage")
        self.crop = int(crop)
        self.locator = nn.Sequential(
            nn.Conv2d(2 * in_channels, 16, 5, 2, 2, bias=False),
            make_norm(norm, 16, dims=2),
            make_act(act),
            nn.Conv2d(16, 32, 3, 2, 1, bias=False),
            make_norm(norm, 32, dims=2),
            make_act(act),
            nn.Conv2d(32, 32, 3, 1, 2, dilation=2, bias=False),
            make_norm(norm, 32, dims=2),
            make_act(act),
            nn.Conv2d(32, 32, 3, 1, 4, dilation=4, bias=False),
            make_norm(norm, 32, dims=2),
            make_act(act),
            nn.Conv2d(32, 1, 1),
        )
        c1, c2, c3 = widths
        self.read = nn.Sequential(
            _conv2plus1d(2 * in_channels, c1, 2, norm, act),
            _conv2plus1d(c1, c2, 2, norm, act),
            _conv2plus1d(c2, c3, 2, norm, act),
        )
        cells = (self.crop // 8) ** 2
        self.read_proj = nn.Sequential(nn.Conv1d(c3 * cells, temporal_width, 1), make_act(act))
        self.context = nn.Sequential(
            _conv2plus1d(2 * in_channels, context_width // 2, 2, norm, act),
            _conv2plus1d(context_width // 2, context_width, 2, norm, act),
        )
        layers: list[nn.Module] = []
        width = temporal_width + context_width
        for d in dilations:
            layers += [
                nn.Conv1d(width, temporal_width, 3, padding=int(d), dilation=int(d)),
                nn.BatchNorm1d(temporal_width),
                make_act(act),
            ]
            width = temporal_width
        self.temporal = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.evidence = nn.Conv1d(temporal_width, 1, 1)
        self.attention = nn.Conv1d(temporal_width, 1, 1)
        self.extent_head = nn.Conv1d(temporal_width, 1, 1)
        self.loading_head = nn.Conv1d(temporal_width, 1, 1)
        self.scenario_head = nn.Linear(temporal_width, N_SCENARIOS)

    def locate(self, x: torch.Tensor) -> torch.Tensor:
        """Cleft heatmap logits (B, H/4, W/4) of a clip x (B, C, T, H, W)."""
        summary = torch.cat([x.mean(dim=2), x.std(dim=2)], dim=1)
        return self.locator(summary)[:, 0]

    @staticmethod
    def soft_centre(heatmap: torch.Tensor) -> torch.Tensor:
        """Soft-argmax of heatmap logits (B, h, w) -> centre (B, 2) as (x, y) in [-1, 1]."""
        b, h, w = heatmap.shape
        weights = torch.softmax(heatmap.reshape(b, -1), dim=1).reshape(b, h, w)
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=heatmap.device)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=heatmap.device)
        cy = (weights.sum(dim=2) * ys).sum(dim=1)
        cx = (weights.sum(dim=1) * xs).sum(dim=1)
        return torch.stack([cx, cy], dim=1)

    def crop_around(self, x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) clip, centre (B, 2) -> (B, C, T, crop, crop) window from each frame.

        The sampling grid is built from the centre by arithmetic (``affine_grid`` has no ONNX
        export before opset 20); bilinear ``grid_sample``, zeros outside the frame.
        """
        b, c, t, h, w = x.shape
        steps = torch.arange(self.crop, dtype=x.dtype, device=x.device) + 0.5
        offsets_x = (steps - self.crop / 2) * (2.0 / w)  # (crop,) in normalised units
        offsets_y = (steps - self.crop / 2) * (2.0 / h)
        gx = centre[:, 0].reshape(b, 1, 1) + offsets_x.reshape(1, 1, self.crop)
        gy = centre[:, 1].reshape(b, 1, 1) + offsets_y.reshape(1, self.crop, 1)
        grid = torch.stack(
            [gx.expand(b, self.crop, self.crop), gy.expand(b, self.crop, self.crop)], dim=3
        )
        frames = x.permute(0, 2, 1, 3, 4).reshape(b, t * c, h, w)
        window = F.grid_sample(frames, grid, mode="bilinear", align_corners=False)
        return window.reshape(b, t, c, self.crop, self.crop).permute(0, 2, 1, 3, 4)

    def outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's output.

        Args:
            x: float32 (B, 1, T, H, W) in [0, 1].

        Returns:
            ``logit`` (B,), ``relevance`` (B, T), ``attention`` (B, T) (sums to 1 over T),
            ``heatmap`` (B, H/4, W/4) logits, ``centre`` (B, 2), ``extent`` (B, T) logits,
            ``loading`` (B, T), ``scenario`` (B, N_SCENARIOS) logits, ``embedding``
            (B, temporal_width): the per-frame features averaged over time (what ``labral
            pretrain`` contrasts).
        """
        t = x.shape[2]
        heatmap = self.locate(x)
        centre = self.soft_centre(heatmap)
        window = self.read(with_frame_difference(self.crop_around(x, centre)))
        b, c, _, hh, ww = window.shape
        local = self.read_proj(window.permute(0, 1, 3, 4, 2).reshape(b, c * hh * ww, t))
        small = F.avg_pool3d(x, (1, 2, 2))
        context = self.context(with_frame_difference(small)).mean(dim=(3, 4))
        feats = self.temporal(torch.cat([local, context], dim=1))
        dropped = self.dropout(feats)
        evidence = self.evidence(dropped)[:, 0]
        attention = torch.softmax(self.attention(dropped)[:, 0], dim=1)
        logit = (attention * evidence).sum(dim=1)
        pooled = (attention.unsqueeze(1) * feats).sum(dim=2)
        return {
            "logit": logit,
            "relevance": attention * evidence * t,
            "attention": attention,
            "heatmap": heatmap,
            "centre": centre,
            "extent": self.extent_head(feats)[:, 0],
            "loading": self.loading_head(feats)[:, 0],
            "scenario": self.scenario_head(pooled),
            "embedding": feats.mean(dim=2),
        }

    @torch.jit.export
    def forward_with_relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (B, 1, T, H, W) -> logits (B,) and relevance (B, T), logit = relevance.mean."""
        out = self.outputs(x)
        return out["logit"], out["relevance"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (B, 1, T, H, W) -> logits float32 (B,)."""
        return self.outputs(x)["logit"]
