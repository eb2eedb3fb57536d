#!/usr/bin/env python
"""Export a trained version's network for use without this project: TorchScript, ONNX, torch.export.

    python sh/export.py -e baseline -v 0                         # every format; writes res/baseline/version_0/export/
    python sh/export.py -e baseline -v 0 --format onnx --ckpt last

The network (the LightningModule's ``net``) takes what it took in training: images (N, C, H, W) scaled as the
datamodule scales them; encoded rows (N, features) for a table, with the fitted encoding written beside as
encoding.json; token ids and their mask (N, L) for text, with the vocabulary as vocabulary.json. Each export is
checked against eager PyTorch on real test batches (the largest absolute difference of the outputs, and the
top-1 agreement of a classifier), ONNX with onnxruntime when it is installed; export.json records it. An export
further from eager than ``--tolerance`` (times the outputs' largest magnitude when that is over 1) exits 1,
naming the format and the difference. ONNX needs
``pip install onnx onnxscript`` (and onnxruntime to check it).
"""
import importlib.util
import sys
from dataclasses import asdict

import torch

from _experiments import UsageError, exit_on_usage_error, shown
from _trained import TrainedRun, load_run, trained_version_parser
from runtime.run_folder import write_json_atomic

FORMATS = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx", "exported": "model.pt2"}
PARITY_BATCHES = 5


def parse_args(argv=None):
    parser = trained_version_parser(__doc__)
    parser.add_argument("--format", nargs="+", choices=[*FORMATS, "all"], default=["all"], help="formats (default all)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest difference from eager allowed")
    return parser.parse_args(argv)


def dynamic_dims(inputs) -> list:
    """The dimensions of each input that may change: the batch, and a text's length."""
    text = [x.ndim == 2 and x.dtype in (torch.long, torch.bool) for x in inputs]  # token ids and their mask
    return [{0: "batch", **({1: "length"} if is_text else {})} for is_text in text]


def export(name: str, net: torch.nn.Module, inputs: tuple, path):
    """Write ``net`` traced on ``inputs`` as format ``name`` to ``path``; return a callable that runs the file.

    torch.export's program (the batch, and a text's length, dynamic) is what both the ``exported`` file and the
    ONNX file are made from."""
    if name == "torchscript":
        torch.jit.trace(net, inputs, check_trace=False).save(str(path))  # checked below, on other batches
        loaded = torch.jit.load(str(path))
        return lambda *x: loaded(*x)
    shapes = tuple({axis: torch.export.Dim.DYNAMIC for axis in spec} for spec in dynamic_dims(inputs))
    program = torch.export.export(net, inputs, dynamic_shapes=shapes)
    if name == "exported":
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()
        return lambda *x: loaded(*x)
    missing = [package for package in ("onnx", "onnxscript") if importlib.util.find_spec(package) is None]
    if missing:
        raise UsageError(f"the onnx export needs {' and '.join(missing)}: pip install onnx onnxscript onnxruntime")
    names = [f"input_{i}" for i in range(len(inputs))]
    torch.onnx.export(program, inputs, str(path), input_names=names, output_names=["output"], dynamo=True)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda *x: torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, x)})[0])


def parity(run: TrainedRun, net, exported) -> dict:
    """The largest absolute difference between eager and exported outputs on real test batches, and for a
    classifier (class scores out) the share of samples whose top-1 class agrees."""
    largest, scale, agree, samples, classifier = 0.0, 0.0, 0, 0, False
    with torch.no_grad():
        for inputs, _ in run.test_batches(limit=PARITY_BATCHES):
            eager, other = net(*inputs).float(), exported(*inputs).float()
            largest = max(largest, float((eager - other).abs().max()))
            scale = max(scale, float(eager.abs().max()))
            classifier = eager.ndim == 2
            agree += int((eager.argmax(dim=1) == other.argmax(dim=1)).sum()) if classifier else 0
            samples += len(eager)
    result = {"max_abs_diff": largest, "scale": scale, "samples": samples}
    if classifier:
        result["top1_agreement"] = agree / samples
    return result


def preprocessing(run: TrainedRun, folder) -> dict:
    """What a user must do to inputs before the network, written beside the exports where it is data."""
    datamodule = run.datamodule
    if hasattr(datamodule, "encoding"):
        write_json_atomic(folder / "encoding.json", {**asdict(datamodule.encoding),
                                                     "features": datamodule.feature_columns,
                                                     "categorical": datamodule.categorical})
        return {"inputs": "rows (N, features) encoded as encoding.json says: numbers standardised with means and "
                          "stds, then each categorical column one-hot over its categories", "files": ["encoding.json"]}
    if getattr(datamodule, "vocabulary", None) is not None:
        vocabulary = datamodule.vocabulary
        write_json_atomic(folder / "vocabulary.json", {"level": vocabulary.level, "tokens": vocabulary.tokens,
                                                       "max_length": datamodule.max_length})
        return {"inputs": "token ids (N, L) from vocabulary.json (lower-cased words and punctuation, or characters; "
                          "unknown: 1, padding: 0) and mask = ids != 0", "files": ["vocabulary.json"]}
    scaling = getattr(datamodule, "pixel_scaling", None)
    mean, std = scaling if scaling else (getattr(datamodule, "mean", None), getattr(datamodule, "std", None))
    return {"inputs": "images (N, C, H, W): pixels / 255, then (x - mean) / std per channel",
            "input_shape": list(datamodule.input_shape), "mean": list(mean or []), "std": list(std or [])}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.tolerance > 0:  # also refuses nan
        raise UsageError(f"--tolerance must be a positive number, got {args.tolerance}")
    formats = list(FORMATS) if "all" in args.format else list(dict.fromkeys(args.format))
    run = load_run(args.config, args.ex_name, args.v_num, args.ckpt)
    net = run.model.net.eval()
    inputs, _ = next(run.test_batches(limit=1))
    folder = run.paths.run_dir / "export"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"checkpoint": str(run.checkpoint), "tolerance": args.tolerance, **preprocessing(run, folder),
              "formats": {}}
    failed = []
    for name in formats:
        path = folder / FORMATS[name]
        exported = export(name, net, inputs, path)
        check = parity(run, net, exported) if exported is not None else {"checked": False,
                                                                          "why": "onnxruntime is not installed"}
        check["file"] = path.name
        check["passed"] = exported is None or check["max_abs_diff"] <= args.tolerance * max(1.0, check["scale"])
        record["formats"][name] = check
        if not check["passed"]:
            failed.append(f"{name} differs from eager PyTorch by {check['max_abs_diff']:.3g} (tolerance "
                          f"{args.tolerance:g} x {max(1.0, check['scale']):.3g})")
        summary = f"max |diff| {check['max_abs_diff']:.2e}" if exported is not None else "not checked"
        print(f"{name}: {shown(path)}, {summary}" + (f", top-1 agreement {check['top1_agreement']:.4f}"
                                                   if "top1_agreement" in check else ""))
    write_json_atomic(folder / "export.json", record)
    if failed:
        print(f"ERROR: {'; '.join(failed)} (export.json has the details)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_usage_error(main))
