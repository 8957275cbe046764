"""Training losses of METHOD.md, each a separate function of tensors.

``L_G = L_s + λ_c L_c + λ_adv L_adv + λ_cons L_cons + L_recons``. Feature lists are the
loss network's relu1_1..relu4_1 taps; masks are resized to each tap inside. The adversarial
terms take the scores of a :class:`training.discriminator.PatchDiscriminator` (least squares:
1 = "this patch holds a pasted object", 0 = "untouched painting"); the consistency terms take
the model itself, because they re-run its encoder and kernel generator on the output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dkt.dktnet.model import MULTIPLE, DKTNet, NetworkOutput
from dkt.dktnet.stats import RegionStats, masked_adain, masked_covariance, masked_stats, resize_mask
from dkt.imaging.chroma import chroma_detail, chroma_rms, inner
from dkt.imaging.colour import srgb_to_lab_tensor

_EPS = 1e-6


def _mask_like(mask: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Area-resize a (B,1,H,W) mask to a feature map's spatial size."""
    if mask.shape[-2:] == feat.shape[-2:]:
        return mask
    return F.adaptive_avg_pool2d(mask, feat.shape[-2:])


def _stats_scale(stats: RegionStats) -> torch.Tensor:
    """A target's own size, detached: the mean squared mean and std over channels and batch."""
    return (stats.mean.pow(2).mean() + stats.std.pow(2).mean()).detach().clamp_min(_EPS)


def style_loss(
    output_feats: list[torch.Tensor], composite_feats: list[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    """L_s: the output's foreground statistics should be the painting's (background) ones.

    Squared distance of masked mean and std, averaged over channels, divided by the target's
    own scale and averaged over taps. Why divided: raw, the terms of a pretrained VGG are
    about 1.08 / 0.40 / 0.21 / 0.09 at relu1_1..relu4_1 on a typical composite, so relu1_1,
    which is mostly colour, outweighed relu4_1 twelve to one and the "style" loss was a colour
    loss. Relative to the target each tap's term is a relative error, and every level counts
    about the same.
    """
    total = output_feats[0].new_zeros(())
    for out_f, comp_f in zip(output_feats, composite_feats, strict=True):
        m = _mask_like(mask, out_f)
        fg = masked_stats(out_f, m)
        bg = masked_stats(comp_f, 1.0 - m)
        total = total + _stats_distance(fg, bg) * 2.0 / _stats_scale(bg)
    return total / len(output_feats)


#: Lab units that count as 1 in the colour loss: a 10-unit error of a channel's mean (about
#: the gap between a Lab transfer and a VGG-only model on the example composites) gives 1.
COLOUR_UNIT = 10.0


def colour_loss(output: torch.Tensor, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_colour: the output's foreground should have the painting's colour statistics, in Lab.

    Per-channel mean and std of CIELAB pixel values (the image as a tap before the loss
    network), in units of :data:`COLOUR_UNIT`. Lab because it separates lightness from the
    two opponent colour axes, so matching each axis's mean and std moves hue and saturation
    as well as brightness (RGB channels are so correlated that matching them one by one
    cannot); it is also the space of the colour metric and of Reinhard's transfer. VGG
    statistics match colour only loosely (relu1_1 is a bank of edge and colour filters after
    a ReLU), which left pretrained-VGG models further from the painting's colours than a
    plain Lab transfer.
    """
    out_lab, comp_lab = srgb_to_lab_tensor(output), srgb_to_lab_tensor(composite)
    fg = masked_stats(out_lab, mask)
    bg = masked_stats(comp_lab, 1.0 - mask)
    return _stats_distance(fg, bg) / COLOUR_UNIT**2


#: Lab units of excess chroma-detail RMS that count as 1 in the chroma term: the speckle
#: the relu3 model put on light objects was about 2 units above the painting's own.
CHROMA_UNIT = 2.0


def chroma_noise_loss(
    output: torch.Tensor, composite: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_chroma: the object may carry no finer colour detail than the painting has.

    One-sided: the squared excess of the object's a/b high-pass RMS over the painting's (see
    :mod:`dkt.imaging.chroma`, the metric it mirrors), per image, in units of
    :data:`CHROMA_UNIT`. Why: the style loss matches feature statistics, which a decoder can
    satisfy with colour speckle (green and pink specks on light objects); the colour loss
    matches distributions, which speckle hardly moves. Less detail than the painting is
    left to the style and content terms, so a smooth painting does not flatten the object.
    """
    fg = chroma_rms(chroma_detail(output), inner(mask))
    bg = chroma_rms(chroma_detail(composite).detach(), inner(1.0 - mask))
    return (torch.relu(fg - bg) / CHROMA_UNIT).pow(2).mean()


def content_target(composite_feat: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """What L_c compares the output's deepest loss-network features with.

    ``composite``: the composite's own features (METHOD.md). They carry the photo's style
    too, so this target pulls against L_s. ``transformed``: the same features with the
    foreground re-normalised to the background's mean and std (masked AdaIN), the target
    AdaIN-style training uses: content kept, style already the painting's, so the two terms
    agree on the statistics and disagree only where they should (structure vs texture).
    """
    if kind == "composite":
        return composite_feat
    if kind == "transformed":
        return masked_adain(composite_feat, _mask_like(mask, composite_feat)).detach()
    raise ValueError(f"unknown content target {kind!r}")


def content_loss(
    output_feat: torch.Tensor, target_feat: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_c: deepest-tap features of the output's foreground should keep the object's content.

    Mask-weighted squared distance over channels, relative to the target's own mean square
    in the foreground (detached), so λ_c means the same for any loss network's scale.
    """
    m = _mask_like(mask, output_feat)
    sq = ((output_feat - target_feat) ** 2).mean(dim=1, keepdim=True)
    energy = (target_feat.detach() ** 2).mean(dim=1, keepdim=True)
    scale = ((energy * m).sum() / m.sum().clamp_min(1.0)).clamp_min(_EPS)
    return (sq * m).sum() / m.sum().clamp_min(1.0) / scale


def identity_loss(output: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """L_recons (identity): an unedited painting with a random mask must come back unchanged."""
    return F.l1_loss(output, painting)


def autoencoder_loss(decoded: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_recons (autoencoder): with a trainable encoder, D(E(I)) must reproduce I."""
    return F.l1_loss(decoded, image)


# ---------------------------------------------------------------------------- adversarial


def patch_targets(mask: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The fraction of pasted pixels under each score: the discriminator's regression target.

    Area pooling (not nearest or thresholding) gives patches on the object's border partial
    targets, so a discriminator is never asked to call a patch that is 10% object either
    fully pasted or fully clean. Detached: the targets are labels, not something to optimise.
    Adaptive pooling needs no stride: for sizes that are multiples of the discriminator's
    stride (all training sizes) its bins are exactly the scores' pixel blocks; for others
    they are spread over the whole image, off by less than one stride.
    """
    target = F.adaptive_avg_pool2d(mask.detach().float(), scores.shape[-2:])
    return target.to(scores.dtype)


def _balanced_lsgan(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error to soft targets, pasted and clean patches weighted half and half.

    Objects cover 5 to 30% of an image, so with a plain mean a discriminator scoring 0
    everywhere is already 70 to 95% right and learns to find the object slowly. Each image's
    pasted mass (``t``) and clean mass (``1 - t``) get equal total weight instead; an image
    with nothing pasted falls back to the plain mean. The optimum per patch is still
    ``score == target``.
    """
    t = targets.float()
    pasted = t / t.sum(dim=(1, 2, 3), keepdim=True).clamp_min(_EPS)
    clean = (1.0 - t) / (1.0 - t).sum(dim=(1, 2, 3), keepdim=True).clamp_min(_EPS)
    weight = pasted + clean
    weight = weight / weight.sum(dim=(1, 2, 3), keepdim=True)
    per_image = (weight * (scores.float() - t) ** 2).sum(dim=(1, 2, 3))
    return per_image.mean()


def discriminator_loss(
    scores_harmonized: torch.Tensor,
    mask: torch.Tensor,
    scores_painting: torch.Tensor | None = None,
    scores_composite: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_D (least squares): find the pasted object, patch by patch.

    - harmonized output (scores of the *detached* output) -> the downsampled mask: the
      discriminator must find the object after harmonization; this is what L_adv fights.
    - unedited painting, optional but recommended -> 0 everywhere. It is the same painting the
      object was pasted on, so the only difference between it and the output is the pasted
      region: the discriminator cannot score by the painting's content or by position, only by
      the object. The training batches already carry it (the identity samples).
    - raw composite, optional -> the downsampled mask. An easy positive that teaches the
      object's photographic look from the first adversarial step; it stops being informative
      once outputs look painted, so it is off unless asked for.

    Fake terms are averaged, then averaged with the real term, so adding the composite does
    not tilt the balance between real and fake.
    """
    fakes = [_balanced_lsgan(scores_harmonized, patch_targets(mask, scores_harmonized))]
    if scores_composite is not None:
        fakes.append(_balanced_lsgan(scores_composite, patch_targets(mask, scores_composite)))
    fake = torch.stack(fakes).mean()
    if scores_painting is None:
        return fake
    real = (scores_painting.float() ** 2).mean()
    return 0.5 * (fake + real)


def discriminator_step_loss(
    disc: nn.Module,
    harmonized: torch.Tensor,
    mask: torch.Tensor,
    painting: torch.Tensor | None = None,
    composite: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`discriminator_loss` from images: detaches them and scores all in one forward.

    Detaching here means the discriminator's update can never push gradients into the
    generator, whatever the caller forgets; one batched forward is cheaper on a CPU than
    three small ones (the instance norm is per sample, so batching changes no score).
    """
    images = [harmonized.detach()]
    for extra in (painting, composite):
        if extra is not None:
            images.append(extra.detach())
    scores = disc(torch.cat(images)).split(harmonized.shape[0])
    rest = iter(scores[1:])
    s_painting = next(rest) if painting is not None else None
    s_composite = next(rest) if composite is not None else None
    return discriminator_loss(scores[0], mask, s_painting, s_composite)


def adversarial_loss(scores_harmonized: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_adv for the generator (least squares): no patch of the output may be flagged.

    The target is 0 everywhere, but each patch is weighted by the mask fraction under it or
    under any of its 8 neighbours (the ring covers the object's edge, where halos show, and
    which the receptive field still sees). Why not a plain mean: the background equals the
    painting exactly, so its scores carry no gradient, only a constant that would make the
    loss depend on the discriminator's false alarms, and it would dilute the object's signal
    by its area (a 5% object would get a 20x weaker push than a 100% one). The weights are
    normalised per image, so the scale depends on neither image size nor object size; an
    empty mask gives 0.
    """
    t = patch_targets(mask, scores_harmonized).float()
    weight = F.max_pool2d(t, kernel_size=3, stride=1, padding=1)
    total = weight.sum(dim=(1, 2, 3))
    per_image = (weight * scores_harmonized.float() ** 2).sum(dim=(1, 2, 3))
    return (per_image / total.clamp_min(_EPS)).mean()


# ---------------------------------------------------------------------------- consistency


def _stats_distance(a: RegionStats, b: RegionStats) -> torch.Tensor:
    """Squared distance of mean and std, averaged over batch and channels (scale-free in C)."""
    return F.mse_loss(a.mean, b.mean) + F.mse_loss(a.std, b.std)


def _correlation(cov: torch.Tensor) -> torch.Tensor:
    d = cov.diagonal(dim1=1, dim2=2).clamp_min(_EPS).sqrt()
    return cov / (d[:, :, None] * d[:, None, :])


def standard_stats_consistency(standard: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_cons (a): the foreground and background of F_std share one "standard" style.

    ``standard`` is ``NetworkOutput.standard`` (the deepest stride); ``mask`` is at image or
    feature size. Both regions' statistics keep their gradient: the two standardising
    transforms (tau_n^f, tau_n^b) meet each other rather than one chasing a fixed target.
    Mean and std alone would be nearly a tautology (each region was standardised to (0, 1)
    before tau); the channel correlations of the two regions are what tau_n must make
    agree, i.e. the whitening the standard style stands for.
    """
    m = _mask_like(mask, standard)
    fg, bg = masked_stats(standard, m), masked_stats(standard, 1.0 - m)
    corr_fg = _correlation(masked_covariance(standard, m))
    corr_bg = _correlation(masked_covariance(standard, 1.0 - m))
    return _stats_distance(fg, bg) + F.mse_loss(corr_fg, corr_bg)


def restandardize_consistency(
    model: DKTNet, rendered: NetworkOutput, output: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_cons (b): standardising the output lands on the standard style again, position by position.

    The output (B,3,H,W), H and W multiples of 8, is re-encoded and its foreground
    standardised by the foreground kernels (tau_n^f with kernels from the output's own
    statistics); over the foreground the result must equal F_std (detached), position by
    position: tau_n^f(E(output)) = F_std. The cycle is what makes tau_n^f and tau_s a
    bi-transformation: mapping the harmonized object back to the standard style must undo
    tau_s. Detached, because the standard style is defined by the forward pass on the
    composite. A comparison of statistics only (the earlier form) was close to a tautology,
    since the region is standardised to mean 0, std 1 before tau.

    Gradient reaches tau_n^f (its kernels and their input statistics), a trainable encoder
    and, through ``output``, the decoder.
    """
    h, w = output.shape[-2:]
    if h % MULTIPLE or w % MULTIPLE:
        raise ValueError(f"output H, W must be multiples of {MULTIPLE}, got {h}x{w}")
    feat = model.encode(output)[-1]
    m = resize_mask(mask.to(feat.dtype), model.strides[-1])
    bt = model.bitransform
    z, _ = bt.standardize_region(feat, masked_stats(feat, m), bt.to_standard_fg, m)
    sq = ((z.float() - rendered.standard.detach().float()) ** 2).mean(dim=1, keepdim=True)
    return (sq * m).sum() / m.sum().clamp_min(_EPS)


def consistency_loss(
    model: DKTNet, rendered: NetworkOutput, output: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L_cons = (a) + (b), unweighted.

    Both parts are distances between standardised features or their statistics, of order 1
    when violated, so neither dominates the other by construction.
    """
    return standard_stats_consistency(rendered.standard, mask) + restandardize_consistency(
        model, rendered, output, mask
    )


def kernel_diversity_loss(weights: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Keep the kernel generators classifier-like: E[H(w)] - H(E[w]), over log K, per generator.

    ``weights`` are the (B, K) prototype mixes of each generator. The first part makes each
    image's mix confident (a style class), the second spreads the batch over the prototypes.
    Without it nothing stops every image from getting the same prototype, which is what a
    trained model did (weight >= 0.9995 on one prototype for all 20 example paintings). With
    one prototype there is nothing to choose and the term is 0.
    """
    total = weights[0].new_zeros((), dtype=torch.float32)
    for w in weights:
        k = w.shape[1]
        if k < 2:
            continue
        w = w.float().clamp_min(1e-8)
        per_image = -(w * w.log()).sum(dim=1).mean()
        batch = w.mean(dim=0)
        spread = -(batch * batch.log()).sum()
        total = total + (per_image - spread) / torch.log(torch.tensor(float(k)))
    return total / len(weights)
