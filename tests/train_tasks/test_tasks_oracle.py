#!/usr/bin/python3
"""The trainer's tasks (train/tasks.h) against an independent Python oracle, through tasks_dump.

The oracle reads each problem from its prompt text alone and computes rewards with its own
parser (recursive descent, Python ints and fractions.Fraction, no eval()); it reimplements the
split hash (FNV-1a 64 of the prompt, splitmix64's finalizer, top 53 bits < eval_share).

usage: test_tasks_oracle.py TASKS_DUMP CASE
CASE: rewards | split | generator | lengths
"""
import collections
import random
import re
import subprocess
import sys
from fractions import Fraction

DUMP, CASE = sys.argv[1], sys.argv[2]
EVAL_SHARE = 0.1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
DEPTH_MAX = 32
ALPHABET = "0123456789+-*()/=,>: "
M64 = (1 << 64) - 1


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def run(*args, stdin=None, expect=0):
    p = subprocess.run([DUMP, *map(str, args)], input=stdin, capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"tasks_dump {' '.join(map(str, args))}: exit {p.returncode}, expected {expect}\n"
                 f"{p.stderr}")
    return p.stdout


def problems(spec, seed, split, start, count):
    rows = []
    for line in run("problems", spec, seed, split, start, count).splitlines():
        idx, prompt, answer, kind, nums, target = line.split("\t")
        rows.append(dict(index=int(idx), prompt=prompt, answer=answer, kind=kind,
                         nums=[int(x) for x in nums.split(",")] if nums else [],
                         target=int(target), split=split))
    return rows


# ---- the oracle: problems read from their prompts ----

ARITH_RE = re.compile(r"^(0|[1-9][0-9]*)([+*])(0|[1-9][0-9]*)=$")
COUNTDOWN_RE = re.compile(r"^([1-9][0-9]*(?:,[1-9][0-9]*)*)>([1-9][0-9]*):$")


def read_prompt(prompt):
    """('add'|'mul', a, b) or ('countdown', nums, target) from the prompt text alone."""
    m = ARITH_RE.match(prompt)
    if m:
        return ("add" if m.group(2) == "+" else "mul", int(m.group(1)), int(m.group(3)))
    m = COUNTDOWN_RE.match(prompt)
    check(m is not None, f"prompt {prompt!r} has no known form")
    return ("countdown", [int(x) for x in m.group(1).split(",")], int(m.group(2)))


class Reject(Exception):
    pass


class ExprParser:
    """expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
    factor := number | '(' expr ')'; number := 0 | [1-9][0-9]*. Every value must be an int64,
    every division exact with a nonzero divisor, every number one of the unused given ones."""

    def __init__(self, text, nums):
        self.s, self.i, self.depth = text, 0, 0
        self.left = collections.Counter(nums)

    def peek(self):
        return self.s[self.i] if self.i < len(self.s) else ""

    @staticmethod
    def int64(v):
        if v.denominator != 1 or not INT64_MIN <= v <= INT64_MAX:
            raise Reject()
        return v

    def number(self):
        m = re.compile(r"0(?![0-9])|[1-9][0-9]*").match(self.s, self.i)
        if not m:
            raise Reject()
        self.i = m.end()
        v = int(m.group(0))
        if v > INT64_MAX or self.left[v] == 0:
            raise Reject()
        self.left[v] -= 1
        return Fraction(v)

    def factor(self):
        if self.peek() != "(":
            return self.number()
        self.depth += 1
        if self.depth > DEPTH_MAX:
            raise Reject()
        self.i += 1
        v = self.expr()
        if self.peek() != ")":
            raise Reject()
        self.i += 1
        self.depth -= 1
        return v

    def term(self):
        v = self.factor()
        while self.peek() in ("*", "/"):
            op = self.peek()
            self.i += 1
            r = self.factor()
            if op == "*":
                v = self.int64(v * r)
            else:
                if r == 0:
                    raise Reject()
                v = self.int64(v / r)
        return v

    def expr(self):
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.peek()
            self.i += 1
            r = self.term()
            v = self.int64(v + r if op == "+" else v - r)
        return v

    def parse(self):
        v = self.expr()
        if self.i != len(self.s):
            raise Reject()
        return v


def oracle_reward(prompt, completion):
    task = read_prompt(prompt)
    if task[0] == "add":
        return 1 if completion == str(task[1] + task[2]) else 0
    if task[0] == "mul":
        return 1 if completion == str(task[1] * task[2]) else 0
    try:
        return 1 if ExprParser(completion, task[1]).parse() == task[2] else 0
    except Reject:
        return 0


# ---- the split hash ----

def fnv1a64(b):
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def is_eval(prompt, share=EVAL_SHARE):
    return (mix64(fnv1a64(prompt.encode())) >> 11) * 2.0 ** -53 < share


# ---- candidate completions ----

def tree_of(text):
    """The expression tree of a (valid) answer: ints and (op, left, right) tuples."""
    pos = 0

    def peek():
        return text[pos] if pos < len(text) else ""

    def factor():
        nonlocal pos
        if peek() == "(":
            pos += 1
            t = expr()
            pos += 1
            return t
        m = re.compile(r"[0-9]+").match(text, pos)
        pos = m.end()
        return int(m.group(0))

    def chain(sub, ops):
        nonlocal pos
        t = sub()
        while peek() in ops and peek():
            op = peek()
            pos += 1
            t = (op, t, sub())
        return t

    def term():
        return chain(factor, "*/")

    def expr():
        return chain(term, "+-")

    return expr()


def shuffled_text(t, rng):
    """A fully parenthesized rewrite of tree t with + and * operands swapped at random: the same
    numbers and value (every division still divides the same two values)."""
    if isinstance(t, int):
        return str(t)
    op, a, b = t
    if op in "+*" and rng.random() < 0.5:
        a, b = b, a
    return f"({shuffled_text(a, rng)}{op}{shuffled_text(b, rng)})"


def mutate(s, rng, chars=ALPHABET):
    s = list(s)
    kind = rng.randrange(3)
    i = rng.randrange(len(s) + 1)
    if kind == 0 or not s:
        s.insert(i, rng.choice(chars))
    elif kind == 1:
        del s[min(i, len(s) - 1)]
    else:
        s[min(i, len(s) - 1)] = rng.choice(chars)
    return "".join(s)


def random_expr(nums, rng, depth=0):
    if depth > 3 or rng.random() < 0.35:
        return str(rng.choice(nums))
    e = random_expr(nums, rng, depth + 1) + rng.choice("+-*/") + random_expr(nums, rng, depth + 1)
    return f"({e})" if rng.random() < 0.3 else e


def candidates(p, rng):
    ans, task = p["answer"], read_prompt(p["prompt"])
    out = [ans, "", " " + ans, ans + " ", "0" + ans, ans + "0", ans + ans, p["prompt"] + ans,
           "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 20))),
           "".join(rng.choice("0123456789+-*/()xa.") for _ in range(rng.randrange(1, 20)))]
    out += [mutate(ans, rng) for _ in range(4)]
    out += [mutate(ans, rng, "0123456789") for _ in range(2)]
    if task[0] != "countdown":
        v = int(ans)
        out += [str(v + 1), str(v - 1), str(v + 10 ** rng.randrange(1, 20)), "-0", "+" + ans,
                "0" * rng.randrange(1, 3) + ans, str(rng.randrange(10 ** 25))]
        return out
    nums, target = task[1], task[2]
    tree = tree_of(ans)
    out += [shuffled_text(tree, rng) for _ in range(3)]
    out += [mutate(shuffled_text(tree, rng), rng) for _ in range(2)]
    out += [random_expr(nums, rng) for _ in range(6)]
    out += [random_expr(nums + [target, 0, 1], rng) for _ in range(2)]
    out += [f"({ans})*1", f"({ans})/1", f"{ans}+{nums[0]}-{nums[0]}", f"{ans}-0", f"({ans}",
            f"{ans})", "(" * 40 + ans + ")" * 40, "(" * 1000 + ans + ")" * 1000,
            "(" * 32 + ans + ")" * 32, "(" * 31 + ans + ")" * 31,
            f"{nums[0]}/0", f"{nums[0]}/({nums[0]}-{nums[0]})",
            "9223372036854775807*9223372036854775807", "99999999999999999999999999",
            f"{ans}+9223372036854775807-9223372036854775807", str(target), f"0{nums[0]}"]
    return out


def case_rewards():
    rng = random.Random(1234)
    totals = collections.Counter()
    for spec, n in [("add:3", 1000), ("add:9", 300), ("mul:2", 1000), ("mul:9", 300),
                    ("countdown:2", 500), ("countdown:3", 1000), ("countdown:4", 1000),
                    ("countdown:6", 500), ("add:1,mul:3,countdown:5", 600)]:
        rows = problems(spec, 5, "train", 0, n) + problems(spec, 5, "eval", 0, n // 3)
        lines, want, shown = [], [], []
        for p in rows:
            check(oracle_reward(p["prompt"], p["answer"]) == 1,
                  f"{spec}: generated answer {p['answer']!r} to {p['prompt']!r} is wrong")
            for c in candidates(p, rng):
                if "\t" in c or "\n" in c:
                    continue
                lines.append(f"{p['split']}\t{p['index']}\t{c}")
                want.append(oracle_reward(p["prompt"], c))
                shown.append((p["prompt"], c))
        got = run("reward", spec, 5, stdin="\n".join(lines) + "\n").split()
        check(len(got) == len(want), f"{spec}: {len(got)} rewards for {len(want)} candidates")
        bad = [(shown[i], want[i], got[i]) for i in range(len(want))
               if float(got[i]) != float(want[i])]
        check(not bad, f"{spec}: {len(bad)} rewards differ from the oracle, e.g. "
                       + "; ".join(f"{pc[0]!r} {pc[1][:60]!r}: oracle {w}, C {g}"
                                   for pc, w, g in bad[:5]))
        ones = sum(want)
        # Not vacuous: both outcomes occur beyond the generated answers themselves.
        check(ones > len(rows) and len(want) - ones > len(rows),
              f"{spec}: {ones} of {len(want)} candidates correct")
        totals["candidates"] += len(want)
        totals["correct"] += ones
        print(f"{spec}: {len(rows)} problems, {len(want)} candidates, {ones} correct: agree")
    print(f"total {totals['candidates']} candidates, {totals['correct']} correct")


def case_split():
    # Every dumped problem sits on its side of the hash, and no eval prompt is a train prompt
    # (eval prompts of several seeds against train prompts of another).
    for spec, ntrain, neval in [("add:2", 10000, 3000), ("add:3", 10000, 3000),
                                ("mul:2", 10000, 3000), ("countdown:3", 10000, 3000),
                                ("countdown:4", 10000, 3000),
                                ("add:1,mul:2,countdown:4", 9000, 3000)]:
        train = problems(spec, 1, "train", 0, ntrain)
        evals = [p for seed in (1, 2, 3) for p in problems(spec, seed, "eval", 0, neval // 3)]
        for p in train:
            check(not is_eval(p["prompt"]), f"{spec}: train prompt {p['prompt']!r} hashes to eval")
        for p in evals:
            check(is_eval(p["prompt"]), f"{spec}: eval prompt {p['prompt']!r} hashes to train")
        tp = {p["prompt"] for p in train}
        both = [p["prompt"] for p in evals if p["prompt"] in tp]
        check(not both, f"{spec}: eval prompts among train prompts: {both[:5]}")
        print(f"{spec}: {len(tp)} distinct train, {len({p['prompt'] for p in evals})} distinct "
              f"eval prompts; disjoint")

    # The eval share of whole problem spaces is near eval_share.
    for op in "+*":
        space = [f"{a}{op}{b}=" for a in range(100) for b in range(100)]
        share = sum(map(is_eval, space)) / len(space)
        check(abs(share - EVAL_SHARE) < 0.012, f"a{op}b= over 0..99: eval share {share}")
        print(f"a{op}b= (10000 prompts): eval share {share:.4f}")
    rng = random.Random(7)
    space = set()
    while len(space) < 20000:
        nums = sorted(rng.randint(1, 25) for _ in range(4))
        space.add(",".join(map(str, nums)) + f">{rng.randint(1, 999)}:")
    share = sum(map(is_eval, space)) / len(space)
    check(abs(share - EVAL_SHARE) < 0.012, f"countdown:4 prompts: eval share {share}")
    print(f"countdown:4 (20000 random prompts): eval share {share:.4f}")

    # add:1 has 100 prompts: eval draws find exactly the eval ones, train draws the others.
    space = {f"{a}+{b}=" for a in range(10) for b in range(10)}
    want_eval = {s for s in space if is_eval(s)}
    got_eval = {p["prompt"] for p in problems("add:1", 3, "eval", 0, 4000)}
    got_train = {p["prompt"] for p in problems("add:1", 3, "train", 0, 4000)}
    check(got_eval == want_eval, f"add:1 eval prompts {sorted(got_eval)} != {sorted(want_eval)}")
    check(got_train == space - want_eval, "add:1 train prompts are not the complement")
    print(f"add:1: {len(want_eval)} eval prompts of 100, as the hash says")


def case_generator():
    # Determinism: a pure function of (seed, task, split, index).
    a = run("problems", "add:3,mul:2,countdown:4", 9, "train", 0, 2000)
    b = run("problems", "add:3,mul:2,countdown:4", 9, "train", 0, 2000)
    c = run("problems", "add:3,mul:2,countdown:4", 9, "train", 700, 600)
    d = run("problems", "add:3,mul:2,countdown:4", 10, "train", 0, 2000)
    check(a == b, "two runs differ")
    check(a.splitlines()[700:1300] == c.splitlines(), "problems depend on the start index")
    same = sum(x == y for x, y in zip(a.splitlines(), d.splitlines()))
    check(same < 200, f"seeds 9 and 10 share {same} of 2000 problems")

    # Mixtures: problem i is of part i % nparts.
    kinds = ["add", "mul", "countdown"]
    for p in problems("add:3,mul:2,countdown:4", 9, "eval", 0, 300):
        check(p["kind"] == kinds[p["index"] % 3] == read_prompt(p["prompt"])[0],
              f"mixture problem {p['index']} is {p['kind']}")

    # add and mul: digit counts uniform in 1..N for both operands, the target right.
    for spec, n, op in [("add:3", 3, "add"), ("mul:2", 2, "mul"), ("add:5", 5, "add")]:
        rows = problems(spec, 4, "train", 0, 9000)
        counts = collections.Counter()
        for p in rows:
            kind, x, y = read_prompt(p["prompt"])
            check(kind == op == p["kind"], f"{spec}: {p['prompt']!r}")
            want = x + y if op == "add" else x * y
            check(p["target"] == want and p["answer"] == str(want),
                  f"{spec}: {p['prompt']!r} {p['answer']!r}")
            counts[len(str(x))] += 1
            counts[len(str(y))] += 1
        for d in range(1, n + 1):
            share = counts[d] / (2 * len(rows))
            check(abs(share - 1 / n) < 0.03,
                  f"{spec}: {d}-digit operands {share:.3f}, want {1 / n:.3f}")
        check(set(counts) == set(range(1, n + 1)), f"{spec}: digit counts {dict(counts)}")
        print(f"{spec}: operand digit counts {dict(sorted(counts.items()))}")

    # countdown: sorted numbers in 1..25 as given, every number used once in the answer, a
    # target in 1..999 that is not one of the numbers, and the answer's value is the target.
    for n in (2, 3, 4, 6):
        rows = problems(f"countdown:{n}", 4, "train", 0, 4000)
        ops = collections.Counter()
        for p in rows:
            _, nums, target = read_prompt(p["prompt"])
            check(nums == sorted(nums) == sorted(p["nums"]) and len(nums) == n,
                  f"countdown:{n}: {p['prompt']!r} vs {p['nums']}")
            check(all(1 <= x <= 25 for x in nums) and 1 <= target <= 999 and target not in nums
                  and target == p["target"], f"countdown:{n}: {p['prompt']!r}")
            used = sorted(int(x) for x in re.findall(r"[0-9]+", p["answer"]))
            check(used == nums, f"countdown:{n}: {p['answer']!r} does not use {nums} once each")
            check(ExprParser(p["answer"], nums).parse() == target, f"{p['answer']!r}")
            ops.update(c for c in p["answer"] if c in "+-*/")
        check(all(ops[o] > 0 for o in "+-*/"), f"countdown:{n}: operators {dict(ops)}")
        print(f"countdown:{n}: {len(rows)} problems, operators {dict(sorted(ops.items()))}, "
              f"{len({p['prompt'] for p in rows})} distinct")


def case_lengths():
    def bound(kind, n):
        return {"add": (2 * n + 2, n + 1), "mul": (2 * n + 2, 2 * n),
                "countdown": (3 * n + 4, 5 * n - 5)}[kind]

    specs = [f"add:{n}" for n in range(1, 10)] + [f"mul:{n}" for n in range(1, 10)] + \
            [f"countdown:{n}" for n in range(2, 7)] + ["add:3,mul:2", "countdown:2,add:9",
                                                      "mul:1,countdown:6,add:1"]
    for spec in specs:
        want = [0, 0]
        for part in spec.split(","):
            kind, n = part.split(":")
            pb, ab = bound(kind, int(n))
            want = [max(want[0], pb), max(want[1], ab)]
        got = list(map(int, run("lengths", spec).split()))
        check(got == want, f"{spec}: lengths {got}, want {want}")
        check(run("spec", spec).strip() == spec, f"{spec}: canonical form differs")
    # Generated problems stay within the bounds and (all but countdown:6's answers) reach them.
    for spec in ["add:1", "add:3", "mul:2", "mul:4", "countdown:2", "countdown:3", "countdown:4",
                 "countdown:6"]:
        pm, am = map(int, run("lengths", spec).split())
        rows = problems(spec, 8, "train", 0, 6000) + problems(spec, 8, "eval", 0, 2000)
        lp = max(len(p["prompt"]) for p in rows)
        la = max(len(p["answer"]) for p in rows)
        check(lp <= pm and la <= am, f"{spec}: longest {lp}/{la} beyond {pm}/{am}")
        check(lp == pm, f"{spec}: prompt bound {pm} never reached (longest {lp})")
        if spec != "countdown:6":
            check(la == am, f"{spec}: answer bound {am} never reached (longest {la})")
        check(all(set(p["prompt"] + p["answer"]) <= set(ALPHABET) for p in rows),
              f"{spec}: characters outside the alphabet")
        print(f"{spec}: bounds {pm}/{am}, longest {lp}/{la}")
    for bad in ["", "add", "add:0", "add:10", "countdown:7", "sub:3", "add:3,", "add:03"]:
        run("spec", bad, expect=1)


{"rewards": case_rewards, "split": case_split, "generator": case_generator,
 "lengths": case_lengths}[CASE]()
print("ok")
