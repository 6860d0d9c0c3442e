"""The workdir example's program: reads its data and config, shipped with the job."""

import json
import pathlib

config = json.loads(pathlib.Path("config.json").read_text())
words = pathlib.Path("data/words.txt").read_text().split()
setup = pathlib.Path("setup.done").read_text().strip()
print(f"{config['greeting']}: {len(words)} words, setup left {setup}")
