"""CPU lists as Linux and corekv write them ("0-3,8-11"): parse and format.

Shared by the scripts in scripts/ (they put scripts/lib on sys.path)."""


def parse_cpulist(text):
    """'0-2,5' -> [0, 1, 2, 5] (order of first appearance, no repeats). Empty -> [].

    Raises ValueError on anything else, naming the bad part."""
    out = []
    text = text.strip()
    if not text or text == "(null)":
        return out
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, _, hi = part.partition("-")
            if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                raise ValueError(f"bad CPU range {part!r} in {text!r}")
            cpus = range(int(lo), int(hi) + 1)
        elif part.isdigit():
            cpus = [int(part)]
        else:
            raise ValueError(f"bad CPU {part!r} in {text!r}")
        for c in cpus:
            if c not in out:
                out.append(c)
    return out


def format_cpulist(cpus):
    """[0, 1, 2, 5] -> '0-2,5' (sorted, ranges collapsed). [] -> ''."""
    cpus = sorted(set(cpus))
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)
