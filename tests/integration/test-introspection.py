#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""protocol/io.rpsup.Supervisor1.xml is the interface rpsupd serves: org.freedesktop.DBus.Introspectable
on the control socket lists the same methods, signals and properties of io.rpsup.Supervisor1, with the
same arguments (type and direction, and name where rpsupd gives one) in the same order. Comments,
annotations and white space do not count. (rawdbus speaks to the socket by hand, without Hello;
test-control-bus-tools.py asks with busctl and gdbus.)"""

import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, sys.path[0])
import rawdbus  # noqa: E402
from rpsuptest import Rpsup, check, log, run  # noqa: E402

XML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "protocol", "io.rpsup.Supervisor1.xml")


def members(xml_text, with_names):
    """{("method"|"signal"|"property", name): description} of io.rpsup.Supervisor1 in an introspection
    document."""
    root = ET.fromstring(xml_text)
    ifaces = [i for i in root.iter("interface") if i.get("name") == rawdbus.INTERFACE]
    check(len(ifaces) == 1, f"{len(ifaces)} interfaces named {rawdbus.INTERFACE}")
    out = {}
    for m in ifaces[0]:
        if m.tag in ("method", "signal"):
            # A signal's arguments are all "out", whether or not the document says so.
            out[(m.tag, m.get("name"))] = [(a.get("name") if with_names else None, a.get("type"),
                                            a.get("direction", "in" if m.tag == "method" else "out"))
                                           for a in m.findall("arg")]
        elif m.tag == "property":
            out[(m.tag, m.get("name"))] = (m.get("type"), m.get("access"))
    return out


def test():
    r = Rpsup(workers=1)
    try:
        r.start()
        c = rawdbus.Client(rawdbus.control_path(r)).connect_and_auth()
        reply = c.call("Introspect", interface="org.freedesktop.DBus.Introspectable")
        c.close()
        check(reply["type"] == rawdbus.METHOD_RETURN, f"Introspect failed: {reply}")
        live_text = reply["body"][0]
        # Names of arguments only where the live document has them (a vtable may leave them out).
        named = any(a.get("name") for a in ET.fromstring(live_text).iter("arg"))
        with open(XML) as f:
            want = members(f.read(), named)
        live = members(live_text, named)
        missing = sorted(set(want) - set(live))
        extra = sorted(set(live) - set(want))
        check(not missing, f"in the XML but not served: {missing}")
        check(not extra, f"served but not in the XML: {extra}")
        for key in sorted(want):
            check(want[key] == live[key], f"{key[0]} {key[1]}: the XML says {want[key]}, rpsupd serves {live[key]}")
        log(f"{len(want)} members of {rawdbus.INTERFACE} match, argument names {'compared' if named else 'absent'}")
        check(r.stop() == 0, "rpsupd did not exit 0 on SIGTERM")
    finally:
        r.cleanup()


if __name__ == "__main__":
    run(test)
