vcl 4.1;

# Paradarum cache node.
#
# Caches by URL (Host + path + query, Varnish's default hash, with the Host normalised
# first: lowercase, no trailing dot, no :80 or :443) and understands the
# three purge requests Paradarum sends, from the addresses in `purgers` only:
#
#   PURGE /path?query   Host: www.example.com              drop that one URL
#   BAN /               X-Purge-Hosts: www.example.com *.shop.example
#                       X-Purge-Tags: a b c                drop the objects tagged a, b or c
#                                                          served for those hosts
#   BAN /               X-Purge-Hosts: www.example.com *.shop.example
#                       X-Purge-All: 1                     drop every object served for
#                                                          those hosts
#   BAN /               X-Purge-Hosts: *.shop.example
#                       X-Purge-Except-Hosts: eu.shop.example *.us.shop.example
#                       X-Purge-All: 1 (or X-Purge-Tags)   the same, leaving alone the
#                                                          hosts other zones own
#
# Many customers share one cache, and two origins may well use the same tag, so a ban
# never reaches past the hostnames (zones) it names: every cached object keeps the host
# it was served for, and every ban matches on that host first. A BAN without
# X-Purge-Hosts, or with one that is not a list of hostnames, is refused (400) and bans
# nothing. `*.example.com` stands for every subdomain of example.com (any depth), never
# example.com itself. The most specific zone owns a hostname: a wildcard zone's ban
# names, in X-Purge-Except-Hosts, the zones beneath it that are someone else's, and
# leaves their objects alone.
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
    # One spelling per host before anything is looked up or hashed: lowercase, without
    # a trailing dot and without the default port (Varnish does not know whether TLS
    # ended in front of it, so both :80 and :443 go). `WWW.Example.com.:80` and
    # `www.example.com` are one object, and a URL purge (whose Host Paradarum sends in
    # this spelling) reaches it however the visitor wrote the host.
    if (req.http.host) {
        set req.http.host = regsub(regsub(std.tolower(req.http.host),
            ":(80|443)$", ""), "\.$", "");
    }

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
        # Sets req.http.X-Ban-Hosts to the regex of the hosts (and X-Ban-Unless to the
        # clause that spares the excepted hosts), or answers 400.
        call paradarum_ban_hosts;
        if (req.http.X-Purge-All == "1") {
            # Lurker-friendly (only obj.* fields): old objects are removed in the background.
            if (std.ban("obj.http.X-Paradarum-Host ~ ^(" + req.http.X-Ban-Hosts + ")$ " +
                    req.http.X-Ban-Unless)) {
                return (synth(200, "Banned everything of these hosts"));
            }
            return (synth(400, "Invalid ban: " + std.ban_error()));
        }
        if (req.http.X-Purge-Tags ~ "[^ ,]") {
            # One anchored alternation from the tag list. The ban expression is split on
            # whitespace and taken literally (no quoting, no unescaping), so the regex
            # must hold no space: separators are written \x20. Every character that is
            # not a letter, digit or separator is escaped (PCRE reads "\<punctuation>" as
            # that character), a double quote as \x22. The steps are nested rather than
            # stored one by one: every stored copy costs workspace, and a long list of
            # hosts and tags must fit in Varnish's default workspace_client.
            if (std.ban("obj.http.X-Paradarum-Host ~ ^(" + req.http.X-Ban-Hosts + ")$ " +
                    req.http.X-Ban-Unless + " && " +
                    "obj.http.X-Cache-Tags ~ (^|\x20)(" +
                    regsuball(regsuball(regsuball(regsuball(req.http.X-Purge-Tags,
                        {"([^A-Za-z0-9 ,"])"}, "\\\1"),
                        {"""}, "\\x22"),
                        "^[ ,]+|[ ,]+$", ""),
                        "[ ,]+", "|") +
                    ")(\x20|$)")) {
                return (synth(200, "Banned tags of these hosts"));
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

# X-Purge-Hosts -> req.http.X-Ban-Hosts, an alternation to put between ^( and )$, or a
# 400; X-Purge-Except-Hosts (when sent, checked the same way) -> req.http.X-Ban-Unless,
# `&& obj.http.X-Paradarum-Host !~ ^(<alternation>)$`. Only what Paradarum sends gets through: lowercase hostnames (letters, digits,
# hyphens, dots; at least two labels) separated by single spaces, each possibly with a
# `*.` first label ("every subdomain", with two labels after it). The checks look for
# something wrong rather than matching the whole list with one pattern: a list of 4000
# characters stays far from PCRE2's match limits that way.
sub paradarum_ban_hosts {
    if (req.http.X-Purge-Hosts !~ "[a-z0-9]") {
        return (synth(400, "BAN needs X-Purge-Hosts: the hostnames it is confined to"));
    }
    set req.http.X-Host-List = req.http.X-Purge-Hosts;
    call paradarum_host_regex;
    set req.http.X-Ban-Hosts = req.http.X-Host-Regex;
    unset req.http.X-Ban-Unless;
    if (req.http.X-Purge-Except-Hosts) {
        set req.http.X-Host-List = req.http.X-Purge-Except-Hosts;
        call paradarum_host_regex;
        # (A header value loses its leading spaces: the ban puts one before it.)
        set req.http.X-Ban-Unless =
            "&& obj.http.X-Paradarum-Host !~ ^(" + req.http.X-Host-Regex + ")$";
    }
}

# req.http.X-Host-List -> req.http.X-Host-Regex, or a 400. Only what Paradarum sends gets
# through: lowercase hostnames (letters, digits, hyphens, dots; at least two labels)
# separated by single spaces, each possibly with a `*.` first label ("every subdomain",
# with two labels after it). The checks look for something wrong rather than matching
# the whole list with one pattern: a list of 4000 characters stays far from PCRE2's
# match limits that way.
sub paradarum_host_regex {
    if (req.http.X-Host-List !~ "[a-z0-9]"                 # nothing at all
        || req.http.X-Host-List ~ "[^a-z0-9. *-]"            # a character no zone has
        || req.http.X-Host-List ~ "^ | $|  "                # one space between hosts
        || req.http.X-Host-List ~ "[^ ]\*|\*([^.]|$)"      # * not a whole first label
        || req.http.X-Host-List ~ "(^|[ .])[.-]|-($|[ .])|\.($| )"  # empty label, edge -
        || req.http.X-Host-List ~ "(^| )(\*\.)?[a-z0-9-]+($| )"    # one label (or *.one)
        || req.http.X-Host-List ~ "[a-z0-9-]{64}") {       # a label over 63 characters
        return (synth(400, "Invalid X-Purge-Hosts or X-Purge-Except-Hosts: give lowercase hostnames or *.hostnames separated by single spaces"));
    }
    # Escape . - and * (the only characters left that are not letters or digits), turn
    # each leading \*\. into .+\. (one or more labels, then a dot: subdomains only), and
    # separate with | (the ban expression is split on whitespace). Nested, as for tags.
    set req.http.X-Host-Regex = regsuball(regsuball(regsuball(req.http.X-Host-List,
        "([.*-])", "\\\1"),
        "(^| )\\\*\\\.", "\1.+\\."),
        " ", "|");
}

sub vcl_backend_response {
    # Whose object this is: the host it was served for, lowercase, without port or
    # trailing dot, in the spelling Paradarum uses for zones. Set from the request, never
    # taken from the origin, so an origin cannot put its objects under another host.
    set beresp.http.X-Paradarum-Host = std.tolower(
        regsub(regsub(bereq.http.host, ":[0-9]*$", ""), "\.$", ""));

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
    # Tags and the host are for the cache, not for visitors.
    unset resp.http.X-Cache-Tags;
    unset resp.http.X-Paradarum-Host;
}

sub vcl_synth {
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    set resp.body = resp.reason + {"
"};
    return (deliver);
}
