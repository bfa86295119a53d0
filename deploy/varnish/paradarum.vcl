vcl 4.1;

# Paradarum cache node.
#
# Caches by URL (Host + path + query, Varnish's default hash) and understands the
# three purge requests Paradarum sends, from the addresses in `purgers` only:
#
#   PURGE /path?query     Host: www.example.com     drop that one URL
#   BAN /                 X-Purge-Tags: a b c        drop every object tagged a, b or c
#   BAN /                 X-Purge-All: 1             drop everything
#
# Origins tag responses with `X-Cache-Tags: a b c` (spaces or commas between tags).
# Every response says `X-Cache: HIT` or `X-Cache: MISS`.

import std;

# The origin. Point it at your web server.
backend default {
    .host = "127.0.0.1";
    .port = "8080";
}

# Who may purge: the Paradarum instances. Loopback by default; add their addresses.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (!(client.ip ~ purgers)) {
            return (synth(403, "Purging is not allowed from this address"));
        }
        return (purge);
    }

    if (req.method == "BAN") {
        if (!(client.ip ~ purgers)) {
            return (synth(403, "Banning is not allowed from this address"));
        }
        if (req.http.X-Purge-All == "1") {
            # Lurker-friendly (only obj.* fields): old objects are removed in the background.
            if (std.ban("obj.status != 0")) {
                return (synth(200, "Banned everything"));
            }
            return (synth(500, "Ban failed: " + std.ban_error()));
        }
        if (req.http.X-Purge-Tags ~ "[^ ,]") {
            # Build one anchored alternation from the tag list. The ban expression is
            # split on whitespace and taken literally (no quoting, no unescaping), so the
            # regex must hold no space: separators are written \x20. Every character
            # that is not a letter, digit or separator is escaped (PCRE reads
            # "\<punctuation>" as that character), a double quote as \x22.
            set req.http.X-Ban-Re = regsuball(req.http.X-Purge-Tags, {"([^A-Za-z0-9 ,"])"}, "\\\1");
            set req.http.X-Ban-Re = regsuball(req.http.X-Ban-Re, {"""}, "\\x22");
            set req.http.X-Ban-Re = regsuball(req.http.X-Ban-Re, "^[ ,]+|[ ,]+$", "");
            set req.http.X-Ban-Re = regsuball(req.http.X-Ban-Re, "[ ,]+", "|");
            if (std.ban("obj.http.X-Cache-Tags ~ (^|\x20)(" + req.http.X-Ban-Re + ")(\x20|$)")) {
                return (synth(200, "Banned tags"));
            }
            return (synth(400, "Invalid ban: " + std.ban_error()));
        }
        return (synth(400, "BAN needs X-Purge-Tags or X-Purge-All: 1"));
    }

    # Only cache reads. Anything else goes straight to the origin.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
}

sub vcl_backend_response {
    # Bans are tested against the stored object, so keep the tags on it (lurker-friendly).
    if (beresp.http.X-Cache-Tags) {
        # One space between tags, whatever the origin used (commas, tabs, runs of spaces).
        set beresp.http.X-Cache-Tags = regsuball(beresp.http.X-Cache-Tags, "[\s,]+", " ");
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # Tags are for the cache, not for visitors.
    unset resp.http.X-Cache-Tags;
}

sub vcl_synth {
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    set resp.body = resp.reason + {"
"};
    return (deliver);
}
