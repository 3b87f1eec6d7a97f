"""Same pictures? The default style run (offline VGG16, golden_gate.jpg with starry_night.jpg, seed 0): its final
loss, loss curve, peak RSS and the picture, to compare two engines (run it from each worktree).

    NBART_IMAGES=/path/to/images PYTHONPATH=. python benchmarks/loss_check.py OUT_PREFIX [MAX_SIZE]

Writes OUT_PREFIX.json and OUT_PREFIX.png.
"""

import json
import os
import sys
import time

import nbart
from nbart.styletransfer import style_run

out = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 512
images = os.environ.get("NBART_IMAGES", "/work/shared/images")
t0 = time.perf_counter()
run = style_run(os.path.join(images, "golden_gate.jpg"), os.path.join(images, "starry_night.jpg"), model="vgg16",
                weights="offline", seed=0, max_size=size)
losses = [e.loss for e in run]
run.image().save(out + ".png")
with open("/proc/self/status") as f:
    hwm = next(line for line in f if line.startswith("VmHWM")).split()[1]
with open(out + ".json", "w") as f:
    json.dump({"final": losses[-1], "n": len(losses), "curve": losses[::10], "wall": time.perf_counter() - t0,
               "hwm_mb": int(hwm) / 1024, "nbart": nbart.__file__}, f)
