"""The frame both case generators share (`make_eval_cases.py` for keypoints,
`make_box_eval_cases.py` for boxes): their command line, and writing or checking a directory of
cases, each gt.json, results.json, an optional spec.json and expected.json ({"stats": [...],
"pycocotools": version})."""
import argparse
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(doc):
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="recompute with pycocotools and compare to expected.json")
    ap.add_argument("--fuzz", type=int, metavar="N", help="compare N fresh random cases instead")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--dypose", default=os.path.join(ROOT, "target", "release", "dypose"))
    return ap.parse_args()


def pycocotools_version():
    from importlib.metadata import version
    return version("pycocotools")


def write_or_check(cases, out, stats_of, check):
    """Writes every case of `cases` (name → build() returning gt, results[, spec]) into `out` with
    the stats that `stats_of(case_dir, gt_path, res_path)` computes; with `check`, only compares
    those stats with the committed expected.json. Returns the exit status."""
    version = pycocotools_version()
    bad = 0
    if not check:
        shutil.rmtree(out, ignore_errors=True)
    for name, build in cases.items():
        d = os.path.join(out, name)
        gt_path, res_path = os.path.join(d, "gt.json"), os.path.join(d, "results.json")
        if not check:
            os.makedirs(d, exist_ok=True)
            gt, res, *spec = build()
            json.dump(gt, open(gt_path, "w"))
            json.dump(res, open(res_path, "w"))
            if spec:
                json.dump(spec[0], open(os.path.join(d, "spec.json"), "w"), indent=2)
        stats = stats_of(d, gt_path, res_path)
        exp_path = os.path.join(d, "expected.json")
        if check:
            old = json.load(open(exp_path))["stats"]
            if old != stats:
                bad += 1
                print("MISMATCH", name, old, stats)
        else:
            json.dump({"stats": stats, "pycocotools": version}, open(exp_path, "w"))
        print("%-40s %s" % (name, " ".join("%.4f" % s for s in stats)))
    print("%d cases, pycocotools %s%s" % (len(cases), version, (", %d mismatches" % bad) if check else ""))
    return 1 if bad else 0


def keep_failure(name, paths):
    """Copies the files of a fuzz case that differs into ROOT/name; returns that folder."""
    keep = os.path.join(ROOT, name)
    os.makedirs(keep, exist_ok=True)
    for p in paths:
        shutil.copy(p, keep)
    return keep
