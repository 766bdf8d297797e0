"""Parse a Prometheus text exposition with Debian's prometheus_client and
print every sample as `name{label="value",...} value`, labels sorted, one a
line. Exit 1 (the parser's message on stderr) when the text does not parse.

Usage: prom_samples.py FILE
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others
        print("does not parse: %r" % (e,), file=sys.stderr)
        return 1
    for fam in families:
        print("# family %s %s" % (fam.name, fam.type))
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
            print("%s{%s} %r" % (s.name, labels, float(s.value)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
