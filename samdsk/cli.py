"""The method commands of ``samdsk``: experiment, compare, train, pretrain, propose, match.

``main(argv)`` returns the exit status: 0 on success, 2 for invalid arguments (argparse's
usage message), 1 for an error of the method library (its message on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from samdsk.cli_args import (
    arm_list,
    fraction,
    parse_knowledge,
    positive,
    read_probability,
    share,
    unit,
)
from samdsk.errors import ConfigError, SamdskError
from samdsk.fusion import DEFAULT_FUSION_BAND
from samdsk.knowledge import PRESETS, ClassKnowledge
from samdsk.model import ModelConfig
from samdsk.model.config import AUTO_AUGMENT, MACHINE_AUGMENTATIONS
from samdsk.model.pretrain_transfer import PRETRAIN_TRANSFERS
from samdsk.selection import EMPTY_LABEL_POLICIES

if TYPE_CHECKING:
    from samdsk.proposals import ProposalCache, ProposalSource


def main(argv: Sequence[str] | None = None) -> int:
    """Run one method command; see ``samdsk --help``."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as stop:  # argparse exits on --help and on invalid arguments
        return stop.code if isinstance(stop.code, int) else 2
    try:
        status: int = args.handler(args)
    except SamdskError as error:
        print(f"samdsk {args.command}: error: {error}", file=sys.stderr)
        return 1
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the method commands (one sub-command each)."""
    parser = argparse.ArgumentParser(
        prog="samdsk",
        description="SamDSK: segmentation from few labels with region proposals and domain "
        "knowledge. The method's commands are below.",
        epilog="service commands (each with its own --help):\n"
        "  run           migrate, then run the API and a worker (SQLite and local files by\n"
        "                default; SAMDSK_PORT, SAMDSK_DATA_DIR and the other SAMDSK_* settings\n"
        "                are in the README's Configuration table)\n"
        "  api, worker   the API server or a Celery worker alone\n"
        "  migrate       upgrade the database schema\n"
        "  create-admin  create a site administrator",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    experiment = sub.add_parser("experiment", help="compare supervised, self-training, SamDSK")
    experiment.add_argument("--data", type=Path, required=True, help="folder with images/, masks/")
    experiment.add_argument("--out", type=Path, required=True, help="output folder")
    experiment.add_argument("--test", type=Path, help="separate test folder (default: a split)")
    experiment.add_argument("--labeled-fraction", type=fraction, default=0.1)
    experiment.add_argument("--rounds", type=positive, default=3)
    experiment.add_argument("--threshold", type=unit, default=0.9, help="match score to accept")
    experiment.add_argument("--max-new", type=positive, help="accept at most N per round")
    experiment.add_argument(
        "--fusion-band",
        type=float,
        default=DEFAULT_FUSION_BAND,
        help="labels follow the proposals where the model's p is within 0.5 +- band, the "
        "model elsewhere (0.5: the proposals' union alone)",
    )
    experiment.add_argument(
        "--flip-tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="match against maps averaged over mirror images",
    )
    experiment.add_argument(
        "--empty-labels",
        choices=EMPTY_LABEL_POLICIES,
        default="never",
        help="which empty annotations may become labels: never (a reviewer decides them), "
        "bounded (absence may not become more common than among the labels held), any",
    )
    experiment.add_argument(
        "--arms",
        type=arm_list,
        default="A,B,C,D",
        help="arms to run, comma-separated (default A,B,C,D; A,D sizes the budget first: D "
        "should beat A by 5 Dice points; P is C with peer maps, beside C on the same A, and "
        "needs --machine-augment auto; H is C's labels retrained with --retrain-human-share)",
    )
    experiment.add_argument(
        "--retrain-human-share",
        type=share,
        default=0.5,
        help="arm H: share of every batch drawn from the human labels when C's labels are "
        "retrained beside C (default 0.5)",
    )
    experiment.add_argument("--max-images", type=positive, help="use N images (quick runs)")
    experiment.add_argument(
        "--peer-maps",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="with --machine-augment auto: round 1 matches against the mean of the maps of "
        "A's models under both policies, so a region only one of them is sure of scores low",
    )
    experiment.add_argument(
        "--screen-peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with peer maps: leave out a peer whose per-image validation Dice is below the "
        "chosen model's with 95%% confidence (default on; --no-screen-peers keeps every peer)",
    )
    experiment.add_argument(
        "--warm-start",
        action="store_true",
        help="each round's training (arms B and C) starts from the weights of the model that "
        "chose its labels instead of from scratch",
    )
    experiment.add_argument(
        "--train-seed",
        type=int,
        help="seed of the models' training (default: --seed, which also draws the split); "
        "other values measure how much a result moves with training alone",
    )
    experiment.add_argument(
        "--pretrain-steps",
        type=int,
        default=0,
        help="first pretrain the model by restoring corrupted images of every non-test image "
        "for N steps (self-supervised; masks unused); every arm starts from that encoder "
        "(OUT/pretrained_restoration.pt). 0: no pretraining",
    )
    experiment.add_argument(
        "--pretrain-transfer",
        choices=PRETRAIN_TRANSFERS,
        default="encoder",
        help="what every arm takes from the pretraining: its encoder (default) or the whole "
        "network, decoder included",
    )
    experiment.add_argument(
        "--keep-supervised",
        action="store_true",
        help="save arm A's models (every policy tried) to OUT/supervised, for --supervised-from",
    )
    experiment.add_argument(
        "--supervised-from",
        type=Path,
        help="load arm A's models from an earlier run's OUT (or OUT/supervised) instead of "
        "training them; refused unless that run had the same split and training settings",
    )
    experiment.add_argument(
        "--proposal-workers",
        type=positive,
        default=1,
        help="processes computing offline proposals side by side (SAM sources use one)",
    )
    _add_knowledge(experiment, "default: the preset named like the data folder, else 1 region")
    _add_model_options(experiment)
    _add_proposal_options(experiment)
    experiment.set_defaults(handler=_experiment)

    compare = sub.add_parser(
        "compare", help="runs of 'experiment' side by side: each arm against A over the runs"
    )
    compare.add_argument("runs", type=Path, nargs="+", help="run folders (or report.json files)")
    compare.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    compare.set_defaults(handler=_compare)

    train = sub.add_parser("train", help="train a model on a folder and save a checkpoint")
    train.add_argument("--data", type=Path, required=True, help="folder with images/, masks/")
    train.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    train.add_argument("--max-images", type=positive, help="use N images (quick runs)")
    _add_model_options(train)
    train.set_defaults(handler=_train)

    pretrain = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining on unlabelled images (restoring corrupted images); "
        "use the file as --encoder-weights or --init-weights",
    )
    pretrain.add_argument(
        "--images", type=Path, required=True, help="folder of images (or of images/)"
    )
    pretrain.add_argument("--out", type=Path, required=True, help="weight file to write")
    pretrain.add_argument("--max-images", type=positive, help="use N images (quick runs)")
    _add_model_options(pretrain)
    pretrain.set_defaults(handler=_pretrain)

    propose = sub.add_parser("propose", help="draw the region proposals of one image")
    propose.add_argument("image", type=Path)
    propose.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    propose.add_argument("--top", type=positive, default=20, help="draw the N best proposals")
    propose.add_argument("--size", type=positive, help="resize: longer side N pixels")
    _add_proposal_options(propose)
    propose.set_defaults(handler=_propose)

    match = sub.add_parser("match", help="match proposals to a probability map or a model")
    match.add_argument("image", type=Path)
    given = match.add_mutually_exclusive_group(required=True)
    given.add_argument("--probability", type=Path, help="8-bit PNG (0-255 -> 0-1) or .npy")
    given.add_argument("--model", type=Path, help="checkpoint written by 'samdsk train'")
    match.add_argument("--out", type=Path, required=True, help="overlay PNG to write")
    match.add_argument("--size", type=positive, help="resize: longer side N pixels")
    match.add_argument(
        "--fusion-band", type=float, default=DEFAULT_FUSION_BAND, help="as for 'experiment'"
    )
    _add_knowledge(match, "default: 1 region of any area")
    _add_proposal_options(match)
    match.set_defaults(handler=_match)
    return parser


def _experiment(args: argparse.Namespace) -> int:
    from samdsk.dataset import find_pairs
    from samdsk.experiment import ExperimentConfig, run_experiment
    from samdsk.experiment_outputs import write_outputs

    started = time.perf_counter()
    find_pairs(args.data)  # fail on a wrong folder before loading any proposal source
    knowledge = args.knowledge or PRESETS.get(args.data.resolve().name, ClassKnowledge())
    config = ExperimentConfig(
        data=args.data,
        test=args.test,
        model=model_config(args),
        knowledge=knowledge,
        labeled_fraction=args.labeled_fraction,
        rounds=args.rounds,
        size=args.size,
        threshold=args.threshold,
        max_new_per_round=args.max_new,
        fusion_band=args.fusion_band,
        flip_tta=args.flip_tta,
        empty_labels=args.empty_labels,
        seed=args.seed,
        max_images=args.max_images,
        arms=args.arms,
        proposal_workers=args.proposal_workers,
        peer_maps=args.peer_maps,
        screen_peers=args.screen_peers,
        warm_start=args.warm_start,
        retrain_human_share=args.retrain_human_share,
        pretrain_steps=args.pretrain_steps,
        pretrain_transfer=args.pretrain_transfer,
        keep_supervised=args.out / "supervised" if args.keep_supervised else None,
        supervised_from=args.supervised_from,
    )
    source, cache = _proposal_source(args, args.out / "proposal_cache")
    if config.pretrain_steps:
        print(f"model encoder weights: pretrained by this run ({config.pretrain_steps} steps)")
    else:
        _print_weights(config.model)
    print(f"knowledge: {knowledge.to_dict()}")
    result = run_experiment(
        config,
        source,
        cache=cache,
        pretrain_path=args.out / "pretrained_restoration.pt",
        log=print,
        show_progress_bar=True,
    )
    report = write_outputs(result, args.out)
    print(f"{'arm':<22}{'round':>6}{'added':>7}{'label Dice':>12}{'test Dice':>11}{'test IoU':>10}")
    for key, arm in report["arms"].items():
        for row in arm["rounds"]:
            label = "" if row["added_label_dice"] is None else f"{row['added_label_dice']:.4f}"
            print(
                f"{key + ' ' + arm['name']:<22}{row['round']:>6}{row['added']:>7}{label:>12}"
                f"{row['test_dice']:>11.4f}{row['test_iou']:>10.4f}"
            )
    for baseline in ("A", "C"):
        for key, paired in report[f"paired_with_{baseline}"].items():
            low, high = paired["ci95_points"]
            print(
                f"{key} - {baseline}: {paired['mean_points']:+.1f} Dice points (95% interval "
                f"{low:+.1f} to {high:+.1f} over {paired['images']} test images; "
                f"{paired['better']} better, {paired['worse']} worse, {paired['tied']} level)"
            )
    print(f"wrote {args.out} in {elapsed(started)}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from samdsk.experiment_compare import compare_runs, format_comparison, read_report
    from samdsk.experiment_report import write_json

    named = [
        (path.name if path.is_dir() else path.parent.name, read_report(path)) for path in args.runs
    ]
    comparison = compare_runs(named)
    print(format_comparison(comparison))
    if args.json is not None:
        write_json(args.json, comparison.to_dict())  # strict JSON: a lone run's sd is null
        print(f"wrote {args.json}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from samdsk.augment_choice import train_as_configured
    from samdsk.dataset import find_pairs, load_samples, make_split, read_split_csv
    from samdsk.model import TrainingSample, save_checkpoint

    started = time.perf_counter()
    pairs = {pair.stem: pair for pair in find_pairs(args.data)}
    csv_path = args.data / "split.csv"
    split = make_split(
        list(pairs),
        labeled_fraction=1.0,
        seed=args.seed,
        split_csv=read_split_csv(csv_path) if csv_path.is_file() else None,
        max_images=args.max_images,
    )
    config = model_config(args)
    _print_weights(config)

    def load(stems: Sequence[str]) -> list[TrainingSample]:
        samples = load_samples([pairs[s] for s in stems], args.size, show_progress_bar=True)
        return [TrainingSample(s.image, s.mask) for s in samples]

    train, val = load(split.labeled), load(split.validation)
    print(f"training on {len(train)} images, validating on {len(val)} ({split.source})")
    result, _ = train_as_configured(train, config, val=val, show_progress_bar=True, log=print)
    save_checkpoint(args.out, result)
    print(f"best validation Dice {result.best_val_dice}; wrote {args.out} in {elapsed(started)}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from samdsk.dataset import IMAGE_SUFFIXES
    from samdsk.imageio import read_image
    from samdsk.model.pretrain import pretrain_by_restoration

    started = time.perf_counter()
    folder = args.images / "images" if (args.images / "images").is_dir() else args.images
    if not folder.is_dir():
        raise ConfigError(f"no image folder at {args.images}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    paths = paths[: args.max_images]
    config = model_config(args)
    _print_weights(config)
    print(f"pretraining on {len(paths)} images of {folder}, {config.steps} steps")
    images = [read_image(path) for path in paths]
    result = pretrain_by_restoration(
        images, config, args.out, steps=config.steps, show_progress_bar=True
    )
    print(
        f"restoration loss {result.first_loss:.4f} -> {result.final_loss:.4f}; wrote {args.out} "
        f"in {elapsed(started)} (use it as --encoder-weights or --init-weights {args.out})"
    )
    return 0


def _propose(args: argparse.Namespace) -> int:
    from samdsk.plots import plot_proposals

    image = _read_image(args.image, args.size)
    source, cache = _proposal_source(args)
    proposals = source.propose(image) if cache is None else cache.get_or_compute(image, source)
    drawn = plot_proposals(image, proposals, args.out, top=args.top)
    print(f"{len(proposals)} proposals ({source.name}); drew the best {drawn} in {args.out}")
    return 0


def _match(args: argparse.Namespace) -> int:
    from samdsk.fusion import fuse_with_model
    from samdsk.matching import match_classes
    from samdsk.plots import plot_match

    image = _read_image(args.image, args.size)
    if args.model is not None:
        from samdsk.model import load_checkpoint, predict_probabilities

        model, config = load_checkpoint(args.model)
        maps = predict_probabilities(model, [image], config)[0]
    else:
        maps = read_probability(args.probability, image.shape[:2])
    knowledge = (args.knowledge or ClassKnowledge(),) * maps.shape[0]
    source, cache = _proposal_source(args)
    proposals = source.propose(image) if cache is None else cache.get_or_compute(image, source)
    match = fuse_with_model(match_classes(proposals, maps, knowledge), maps, band=args.fusion_band)
    plot_match(image, proposals, match, args.out, probability=maps)
    print(f"match score {match.score:.4f} from {len(proposals)} proposals ({source.name})")
    for number, found in enumerate(match.per_class, start=1):
        print(f"class {number}: proposals {list(found.chosen)}, score {found.score:.4f}")
    print(f"wrote {args.out}")
    return 0


def _read_image(path: Path, size: int | None) -> np.ndarray:
    from samdsk.dataset import resize_pair
    from samdsk.imageio import read_image

    image = read_image(path)
    if size is not None:
        image = resize_pair(image, np.zeros(image.shape[:2], dtype=np.bool_), size)[0]
    return image


def model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(
        arch=args.arch,
        encoder=args.encoder,
        encoder_weights_path=args.encoder_weights,
        init_weights_path=args.init_weights,
        input_size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed if getattr(args, "train_seed", None) is None else args.train_seed,
        device=args.device,
        cpu_bf16=args.cpu_bf16,
        cpu_threads=args.cpu_threads,
        machine_label_weight=args.machine_label_weight,
        human_share=args.human_share,
        mix_human_share=args.mix_human_share,
        keep_empty_share=args.keep_empty_share,
        machine_augment=args.machine_augment,
        val_every=args.val_every,
        min_val_for_selection=args.min_val_for_selection,
    )


def _proposal_source(
    args: argparse.Namespace, default_cache: Path | None = None
) -> tuple[ProposalSource, ProposalCache | None]:
    from samdsk.proposals import ProposalCache, build_proposal_source

    # A checkpoint alone means SAM, as in the service: it is never silently left unused.
    name = args.proposals or ("sam" if args.sam_checkpoint is not None else "offline")
    options: dict[str, object] = {}
    if name in ("sam", "sam_fast"):
        if args.sam_checkpoint is None:
            raise ConfigError(f"--proposals {name} needs --sam-checkpoint PATH (a SAM weight file)")
        options = {
            "checkpoint": args.sam_checkpoint,
            "model_type": args.sam_model,
            "device": args.proposal_device,
        }
        if args.points_per_side is not None:
            options["points_per_side"] = args.points_per_side
    elif args.sam_checkpoint is not None:
        raise ConfigError("--sam-checkpoint selects SAM weights; --proposals offline uses none")
    elif args.points_per_side is not None:
        raise ConfigError("--points-per-side sets SAM's prompt grid; --proposals offline has none")
    fast_only = {"precision": args.sam_precision, "embedding_cache": args.embedding_cache}
    given = sorted(f"--{key.replace('_', '-')}" for key, value in fast_only.items() if value)
    if name == "sam_fast":
        options.update({key: value for key, value in fast_only.items() if value})
    elif given:
        raise ConfigError(f"{', '.join(given)} apply to --proposals sam_fast only")
    source = build_proposal_source(name, **options)
    if name == "offline":
        print("=" * 72)
        print("WARNING: OFFLINE PROPOSALS (no SAM): " + source.describe())
        print("=" * 72)
    else:
        print(f"proposals: {source.describe()}")
    folder = args.cache or default_cache
    if folder is not None:
        print(f"proposal cache: {folder}")
    return source, None if folder is None else ProposalCache(folder)


def _print_weights(config: ModelConfig) -> None:
    """Say which weights the model starts from, before any training begins."""
    if config.init_weights_path:
        print(f"model weights (encoder and decoder): {config.init_weights_path}")
        return
    print(f"model encoder weights: {config.encoder_weights_path or 'none (random initialisation)'}")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Model and training options."""
    group = parser.add_argument_group("model")
    group.add_argument("--arch", default="Unet", help="segmentation_models_pytorch architecture")
    group.add_argument("--encoder", default="resnet34", help="encoder name or tu-<timm model>")
    group.add_argument("--encoder-weights", help="local encoder weight file (default: random)")
    group.add_argument(
        "--init-weights",
        help="local weight file of a whole network of this architecture ('samdsk pretrain' "
        "writes one): encoder and decoder start from it",
    )
    group.add_argument("--size", type=positive, default=256, help="image size (multiple of 32)")
    group.add_argument("--steps", type=positive, default=600, help="training steps per model")
    group.add_argument("--batch-size", type=positive, default=8)
    group.add_argument("--lr", type=float, default=1e-3)
    group.add_argument("--val-every", type=positive, default=50)
    group.add_argument(
        "--min-val-for-selection",
        type=int,
        default=5,
        help="keep the best validated weights only with at least N validation images, "
        "else the final ones",
    )
    group.add_argument("--machine-label-weight", type=float, default=1.0)
    group.add_argument(
        "--human-share",
        type=share,
        default=0.0,
        help="share of every batch drawn from human labels when machine labels join them "
        "(0: all samples alike)",
    )
    group.add_argument(
        "--mix-human-share",
        type=share,
        default=0.0,
        help="that share of every batch from human labels only where the machine labels' "
        "mix of foreground sizes (empty, <5 %%, 5-20 %%, larger) departs from the human "
        "labels' (0: never)",
    )
    group.add_argument(
        "--keep-empty-share",
        action="store_true",
        help="keep empty masks in every batch at the share the human labels hold them once "
        "machine labels join (machine labels are seldom empty)",
    )
    group.add_argument(
        "--machine-augment",
        choices=(*MACHINE_AUGMENTATIONS, AUTO_AUGMENT),
        default="same",
        help="strong: train machine labels under hue, colour, blur and CutMix perturbations "
        "(noisy student); same: under the augmentations human labels get; strong_all: every "
        "label under the strong perturbations; auto: train under same and under strong_all "
        "and keep the model of the better validation Dice (experiment: A chooses, every arm "
        "follows)",
    )
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="train and predict in bf16 on a CPU with native bf16 (AVX512-BF16 or AMX): "
        "training 1.6x and prediction 1.9x as fast there; ignored, with a warning, elsewhere",
    )
    group.add_argument(
        "--cpu-threads",
        type=positive,
        help="torch threads on the CPU, fixed: a seeded run then repeats bit for bit whatever "
        "runs beside it (default: the cores other processes leave free when a job starts)",
    )


def _add_proposal_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("proposals")
    group.add_argument(
        "--proposals",
        choices=("offline", "sam", "sam_fast"),
        help="default: sam with --sam-checkpoint, else offline; sam_fast: SAM's masks from the "
        "batched engine (bench/RESULTS.md)",
    )
    group.add_argument(
        "--sam-checkpoint", type=Path, help="SAM weight file (for --proposals sam or sam_fast)"
    )
    group.add_argument("--sam-model", default="vit_b", help="SAM model type: vit_b, vit_l, vit_h")
    group.add_argument("--proposal-device", default="auto", help="device of SAM")
    group.add_argument(
        "--points-per-side",
        type=positive,
        help="SAM's prompt grid (default: the paper's 32 x 32; more finds smaller regions, slower)",
    )
    group.add_argument(
        "--sam-precision",
        choices=("auto", "bf16", "fp32"),
        help="sam_fast: precision of the encoder and the decoder's image side (auto: bf16 on "
        "CUDA, fp32 elsewhere)",
    )
    group.add_argument(
        "--embedding-cache",
        type=Path,
        help="sam_fast: folder keeping each image's SAM embedding, so re-runs do not re-encode",
    )
    group.add_argument(
        "--cache", type=Path, help="folder to cache proposals in (experiment: OUT/proposal_cache)"
    )


def _add_knowledge(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--knowledge",
        type=parse_knowledge,
        help=f"a preset {sorted(PRESETS)} or min_regions:max_regions:min_area:max_area "
        f"(areas as fractions of the image); {default}",
    )


def elapsed(started: float) -> str:
    """Seconds since ``started`` (a ``time.perf_counter`` value) as text."""
    return f"{time.perf_counter() - started:.1f} s"
