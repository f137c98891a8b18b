#!/usr/bin/env python3
"""Derives the Claude profile's egress allow list from the Masader catalogue.

Reads every metadata file of the catalogue (default: ../shared/masader/datasets
beside this repository), takes the hosts of the fields the profile adds per
job (`Link`, `HF Link`, `Paper Link`) and prints them with the number of
datasets naming each, and the curated hosts those links redirect to (DOI
prefixes to their publishers, download hosts of data repositories; curated by
hand from where the catalogue's DOIs and pages lead, not fetched: this
machine never contacts them).

  derive-allow-list.py                       hosts, counts, curated redirect targets
  derive-allow-list.py --profile P           ... and which rule of P allows each
  derive-allow-list.py --coverage P          share of the catalogue's links P allows,
                                             by its static rules and with the
                                             per-job metadata hosts
  derive-allow-list.py --check P [--min 5]   exit 1 unless P's static rules allow
                                             every host named by --min or more
                                             datasets (except the documented
                                             exclusions, which must then come
                                             per job) and every curated redirect
                                             target, and P adds the metadata
                                             fields per job (the ctest)

Rules are matched as the gateway matches them (worker/gateway/egress_policy.h):
`example.com` only itself, `*.example.com` only its subdomains, `!rule` denies.
The per-job hosts are filtered as worker/job_spec.cc's UrlHost does: http(s)
only, a qualified letter-digit-hyphen host name, no IP literal, at most 8.
Python 3 standard library only.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys

FIELDS = ["Link", "HF Link", "Paper Link"]
MAX_METADATA_HOSTS = 8  # worker/job_spec.h kMaxMetadataHosts

# Where the catalogue's links lead next (curated; see the module comment).
# DOI prefixes seen in the catalogue's Paper Links, with their publishers'
# landing hosts, then the download and mirror hosts of the data repositories.
REDIRECT_TARGETS = {
    "doi.org": {
        "10.18653 ACL": ["aclanthology.org"],
        "10.1016 Elsevier": ["linkinghub.elsevier.com", "www.sciencedirect.com",
                             "pdf.sciencedirectassets.com"],
        "10.5281 Zenodo": ["zenodo.org"],
        "10.21437 ISCA": ["www.isca-archive.org", "www.isca-speech.org"],
        "10.1109 IEEE": ["ieeexplore.ieee.org"],
        "10.1145 ACM": ["dl.acm.org"],
        "10.1007 Springer": ["link.springer.com"],
        "10.1111 Wiley": ["onlinelibrary.wiley.com"],
        "10.1371 PLOS": ["journals.plos.org"],
        "10.1017 Cambridge": ["www.cambridge.org"],
        "10.1137 SIAM": ["epubs.siam.org"],
        "10.3389 Frontiers": ["www.frontiersin.org"],
        "10.21203 Research Square": ["www.researchsquare.com"],
        "10.1162 MIT Press": ["direct.mit.edu"],
        "10.3390 MDPI": ["www.mdpi.com"],
        "10.7717 PeerJ": ["peerj.com"],
        "10.1080 Taylor & Francis": ["www.tandfonline.com"],
        "10.1093 Oxford": ["academic.oup.com"],
        "10.1038 Nature": ["www.nature.com"],
        "10.1177 SAGE": ["journals.sagepub.com"],
        "10.48550 arXiv": ["arxiv.org"],
        "10.17632 Mendeley Data": ["data.mendeley.com"],
        "10.6084 figshare": ["figshare.com"],
        "10.5220 SciTePress": ["www.scitepress.org"],
        "10.14569 SAI": ["thesai.org"],
        "10.2139 SSRN": ["papers.ssrn.com"],
        "10.20944 Preprints": ["www.preprints.org"],
    },
    "dx.doi.org": {"DOI resolver alias": ["doi.org"]},
    "hf.co": {"short links": ["huggingface.co"]},
    "huggingface.co": {"file downloads": ["cdn-lfs.huggingface.co", "cdn-lfs.hf.co",
                                          "cas-bridge.xethub.hf.co"]},
    "github.com": {"archives, raw files, releases": [
        "codeload.github.com", "raw.githubusercontent.com", "objects.githubusercontent.com",
        "release-assets.githubusercontent.com"]},
    "www.aclweb.org": {"old ACL Anthology": ["aclanthology.org"]},
    "sourceforge.net": {"downloads": ["downloads.sourceforge.net"]},
    "drive.google.com": {"downloads": ["drive.usercontent.google.com"]},
    "www.dropbox.com": {"downloads": ["dl.dropboxusercontent.com"]},
    "opus.nlpl.eu": {"corpus files": ["object.pouta.csc.fi"]},
    "lrec-conf.org": {"proceedings": ["www.lrec-conf.org"]},
}

# Hosts named by many datasets that the static list leaves out on purpose;
# a dataset that links to one still reaches it through allow_from_metadata.
EXCLUDED = {
    "docs.google.com": "Google Forms on this host take anonymous submissions: "
                       "an exfiltration channel for every job",
}


def default_catalogue():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "masader", "datasets"))


LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def url_host(url):
    """The host worker/job_spec.cc's UrlHost accepts, or None."""
    if not isinstance(url, str) or len(url) > 8192:
        return None
    url = url.strip(" \t\r\n\f\v")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if not m or m.group(1).lower() not in ("http", "https"):
        return None
    rest = url[m.end():]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        return None
    host = authority
    if ":" in authority:
        host, port = authority.split(":", 1)
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
            return None
    host = host.lower()
    if not host or len(host) > 253:
        return None
    labels = host.split(".")
    if len(labels) < 2 or not all(LABEL.match(l) for l in labels):
        return None
    if not labels[-1][0].isalpha():
        return None  # an IP literal in some spelling
    return host


class Rules:
    def __init__(self, allow, deny=()):
        self.allow = [r.lower() for r in allow]
        self.deny = [r.lstrip("!").lower() for r in deny]

    @staticmethod
    def _match(rule, host):
        rule = rule.split(":")[0] if rule.count(":") == 1 else rule
        if rule.startswith("*."):
            return host.endswith(rule[1:]) and host != rule[2:]
        return host == rule

    def allows(self, host):
        """The rule that allows `host`, or None."""
        if any(self._match(r, host) for r in self.deny):
            return None
        for r in self.allow:
            if self._match(r, host):
                return r
        return None


def load_profile(path):
    with open(path, encoding="utf-8") as f:
        p = json.load(f)
    net = p.get("network", {})
    return (Rules(net.get("allow", []), net.get("deny", [])),
            list(net.get("allow_from_metadata", [])))


def load_catalogue(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not files:
        sys.exit(f"derive-allow-list: no metadata files in {directory}")
    out = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            out.append((os.path.basename(path), json.load(f)))
    return out


def host_counts(catalogue):
    """host -> number of datasets naming it in FIELDS; field -> Counter."""
    datasets = collections.Counter()
    per_field = {f: collections.Counter() for f in FIELDS}
    for _, md in catalogue:
        seen = set()
        for f in FIELDS:
            h = url_host(md.get(f))
            if h:
                per_field[f][h] += 1
                seen.add(h)
        datasets.update(seen)
    return datasets, per_field


def redirect_hosts():
    out = collections.OrderedDict()
    for source, groups in REDIRECT_TARGETS.items():
        for why, hosts in groups.items():
            for h in hosts:
                out.setdefault(h, f"{source}: {why}")
    return out


def coverage(catalogue, rules, fields):
    total = static = per_job = 0
    hosts_total, hosts_static = set(), set()
    for _, md in catalogue:
        job_hosts = []
        for f in fields:
            h = url_host(md.get(f))
            if h and not rules.allows(h) and h not in job_hosts and \
                    not any(Rules._match(d, h) for d in rules.deny):
                if len(job_hosts) < MAX_METADATA_HOSTS:
                    job_hosts.append(h)
        for f in FIELDS:
            v = md.get(f)
            if not isinstance(v, str) or not v.strip():
                continue
            total += 1
            h = url_host(v)
            if h:
                hosts_total.add(h)
            if h and rules.allows(h):
                static += 1
                per_job += 1
                hosts_static.add(h)
            elif h and h in job_hosts:
                per_job += 1
    return total, static, per_job, len(hosts_total), len(hosts_static)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalogue", default=default_catalogue())
    ap.add_argument("--profile", help="show which rule of this profile allows each host")
    ap.add_argument("--coverage", metavar="PROFILE")
    ap.add_argument("--check", metavar="PROFILE")
    ap.add_argument("--min", type=int, default=5, help="--check: datasets naming a host")
    a = ap.parse_args()
    catalogue = load_catalogue(a.catalogue)
    datasets, per_field = host_counts(catalogue)

    if a.coverage:
        rules, fields = load_profile(a.coverage)
        total, static, per_job, nh, nh_static = coverage(catalogue, rules, fields)
        print(f"{a.coverage}: {len(catalogue)} metadata files, {total} links "
              f"({', '.join(FIELDS)}), {nh} distinct hosts")
        print(f"  static rules:                {static}/{total} links = {100.0 * static / total:.1f}%"
              f"  ({nh_static}/{nh} hosts)")
        print(f"  with the job's own links ({', '.join(fields) or 'none'}): "
              f"{per_job}/{total} links = {100.0 * per_job / total:.1f}%")
        return 0

    if a.check:
        rules, fields = load_profile(a.check)
        problems = []
        for h, n in sorted(datasets.items(), key=lambda kv: (-kv[1], kv[0])):
            if n < a.min or rules.allows(h):
                continue
            if h in EXCLUDED:
                missing = [f for f in FIELDS if per_field[f][h] and f not in fields]
                if missing:
                    problems.append(f"{h} ({n} datasets) is excluded from the static list "
                                    f"but {', '.join(missing)} is not in allow_from_metadata")
                continue
            problems.append(f"{h}: named by {n} datasets, allowed by no rule")
        for h, why in redirect_hosts().items():
            if not rules.allows(h):
                problems.append(f"{h}: redirect target ({why}), allowed by no rule")
        for f in FIELDS:
            if f not in fields:
                problems.append(f"network.allow_from_metadata lacks '{f}'")
        for p in problems:
            print(f"{a.check}: {p}", file=sys.stderr)
        if problems:
            return 1
        print(f"{a.check}: every host named by {a.min} or more of {len(catalogue)} datasets "
              f"and every curated redirect target is allowed")
        return 0

    rules = load_profile(a.profile)[0] if a.profile else None
    print(f"# hosts of {', '.join(FIELDS)} in {len(catalogue)} metadata files "
          f"({a.catalogue}); datasets naming each")
    print(f"# {'datasets':>8}  {'Link':>5} {'HF':>5} {'Paper':>5}  host")
    for h, n in sorted(datasets.items(), key=lambda kv: (-kv[1], kv[0])):
        line = (f"  {n:>8}  {per_field['Link'][h]:>5} {per_field['HF Link'][h]:>5} "
                f"{per_field['Paper Link'][h]:>5}  {h}")
        if rules:
            r = rules.allows(h)
            line += f"   {'allowed by ' + r if r else 'EXCLUDED: ' + EXCLUDED[h] if h in EXCLUDED else 'not allowed'}"
        print(line)
    print("# curated redirect targets (where the links above lead next)")
    for h, why in redirect_hosts().items():
        line = f"  {h}   <- {why}"
        if rules:
            r = rules.allows(h)
            line += f"   {'allowed by ' + r if r else 'not allowed'}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
