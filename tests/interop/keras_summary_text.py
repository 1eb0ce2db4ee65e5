"""Parse the text of Keras' own `model.summary()` (tf-keras's fixed-width table, Keras 3's
rich table) into rows (name, class, output shape, Param #), the model name and the totals
lines. Print the summary with `summary_text(model)` so that nothing wraps."""
import os
import re

TOTALS = re.compile(r"^(Total|Trainable|Non-trainable|Optimizer) params:")
TF_POSITIONS = [0.3, 0.65, 0.75, 1.0]
WIDTH = 400


def summary_text(model):
    out = []
    if type(model).__module__.startswith("tf_keras"):
        model.summary(line_length=WIDTH, positions=TF_POSITIONS, print_fn=out.append)
    else:
        # rich crops its tables to the console, whose width comes from COLUMNS.
        os.environ["COLUMNS"] = str(WIDTH + 10)
        model.summary(line_length=WIDTH, print_fn=lambda s, line_break=None: out.append(s))
    return "\n".join(out) + "\n"


def _split_title(cell):
    m = re.match(r"^(.*) \(([^()]*)\)$", cell)
    return (m.group(1), m.group(2)) if m else (cell, None)


def parse(text):
    lines = text.splitlines()
    name = None
    totals = []
    for line in lines:
        m = re.match(r'^Model: "(.*)"$', line.strip())
        if m and name is None:
            name = m.group(1)
        if TOTALS.match(line.strip()):
            totals.append(line.strip())
    rows = []
    if any(line.startswith("│") for line in lines):
        cur = None
        for line in lines:
            if not line.startswith("│"):
                continue
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells[0]:
                cur = [cells[0], cells[1], cells[2]]
                rows.append(cur)
            elif cur is not None:
                if cells[1]:
                    cur[1] = (cur[1] + " " + cells[1]).strip()
                if cells[0]:
                    cur[0] += cells[0]
    else:
        pos = [int(WIDTH * p) for p in TF_POSITIONS]
        in_table = False
        cur = None
        for line in lines:
            if line.startswith("="):
                in_table = not in_table
                continue
            if not in_table or not line.strip() or line.startswith("_"):
                continue
            cells = [line[0:pos[0]].strip(), line[pos[0]:pos[1]].strip(), line[pos[1]:pos[2]].strip()]
            if cells[0]:
                cur = cells
                rows.append(cur)
            elif cur is not None and cells[1]:
                cur[1] = (cur[1] + " " + cells[1]).strip()
    out = []
    for title, shape, params in rows:
        lname, cls = _split_title(title)
        p = params.split(" ")[0].replace(",", "")
        out.append({"name": lname, "class_name": cls, "output_shape": shape,
                    "params": int(p) if p.isdigit() else params})
    return {"model_name": name, "rows": out, "totals": totals}
