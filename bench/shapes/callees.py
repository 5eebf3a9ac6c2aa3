"""Print the heaviest callees of a function in a .prof file: python callees.py PROF FUNC_SUBSTR [N]"""
import pstats
import sys

prof, needle = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 15
st = pstats.Stats(prof).stats


def short(k):
    f, line, fn = k
    return f"{f.split('site-packages/')[-1]}:{line}({fn})"


for key, (cc, nc, tt, ct, callers) in st.items():
    if needle not in short(key):
        continue
    print(f"== {short(key)} calls={nc} cum={ct:.2f}")
    callees = [(v[3], v[1], short(k2)) for k2, (c2, n2, t2, ct2, cl2) in st.items() for kk, v in cl2.items() if kk == key]
    for ct2, ncalls, name in sorted(callees, reverse=True)[:n]:
        print(f"   {ct2:7.2f} {ncalls:7d} {name}")
