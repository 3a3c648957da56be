"""Published test vectors of SEMANTICS.md, shared by the unit and the live-broker tests."""

#: SEMANTICS.md §1, `routing_SUITE` topic1/1: bindings, then key -> destinations.
TOPIC1_BINDINGS = [
    ("a.b.c", "t1"), ("a.*.c", "t2"), ("a.#.b", "t3"), ("a.b.b.c", "t4"), ("#", "t5"), ("#.#", "t6"),
    ("#.b", "t7"), ("*.*", "t8"), ("a.*", "t9"), ("*.b.c", "t10"), ("a.#", "t11"), ("a.#.#", "t12"),
    ("b.b.c", "t13"), ("a.b.b", "t14"), ("a.b", "t15"), ("b.c", "t16"), ("", "t17"), ("*.*.*", "t18"),
    ("vodka.martini", "t19"), ("a.b.c", "t20"), ("*.#", "t21"), ("#.*.#", "t22"), ("*.#.#", "t23"),
    ("*", "t25"), ("#.b.#", "t26"), ("args-test", "t27"),
]
TOPIC1_TABLE = {
    "a.b.c": "t1 t2 t5 t6 t10 t11 t12 t18 t20 t21 t22 t23 t26",
    "a.b": "t3 t5 t6 t7 t8 t9 t11 t12 t15 t21 t22 t23 t26",
    "a.b.b": "t3 t5 t6 t7 t11 t12 t14 t18 t21 t22 t23 t26",
    "": "t5 t6 t17",
    "b.c.c": "t5 t6 t18 t21 t22 t23 t26",
    "a.a.a.a.a": "t5 t6 t11 t12 t21 t22 t23",
    "vodka.gin": "t5 t6 t8 t21 t22 t23",
    "vodka.martini": "t5 t6 t8 t19 t21 t22 t23",
    "b.b.c": "t5 t6 t10 t13 t18 t21 t22 t23 t26",
    "nothing.here.at.all": "t5 t6 t21 t22 t23",
    "oneword": "t5 t6 t21 t22 t23 t25",
    "args-test": "t5 t6 t21 t22 t23 t25 t27",
}

#: SEMANTICS.md §1 edge cases: one character per key (Y = match), binding -> row.
EDGE_KEYS = ["", ".", "..", "a", "a.", ".a", "a.b", "a..b", "a.x.b", "a.x.y.b", "a.b.c", "b"]
EDGE_TABLE = {
    "": "Y...........", "#": "YYYYYYYYYYYY", "#.#": "YYYYYYYYYYYY", "*": "...Y.......Y",
    "*.*": ".Y..YYY.....", "*.#": ".YYYYYYYYYYY", "#.*": ".YYYYYYYYYYY", "a.#": "...YY.YYYYY.",
    "a.*": "....Y.Y.....", "#.a": "...Y.Y......", ".": ".Y..........", "*.": ".Y..Y.......",
    ".*": ".Y...Y......", "a..b": ".......Y....", "a.*.b": ".......YY...", "a.#.b": "......YYYY..",
    "a.#.#.b": "......YYYY..", "a.b.#": "......Y...Y.", "#.b.#": "......YYYYYY",
}
