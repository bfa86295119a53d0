"""A real WordPress (Debian's package) with the plugin installed from its zip, on
PHP's built-in server and a MariaDB database of its own, behind a real Varnish running
the shipped VCL, purging through a real ``paradarum serve``.

There is no WP-CLI: WordPress is installed, configured and edited by small PHP scripts
that load ``wp-load.php`` and call WordPress's own functions (``wp_install()``,
``wp_insert_post()``, ``wp_update_post()``), which fire the same hooks as the editor.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI, free_port, start_process

REPO = Path(__file__).resolve().parents[2]
WORDPRESS = Path(os.environ.get("PARADARUM_TEST_WORDPRESS", "/usr/share/wordpress"))
PLUGIN_DIR = REPO / "integrations" / "wordpress" / "paradarum"
MARIADB = ("127.0.0.1", 3306)
ADMIN_USER = "admin"
ADMIN_PASSWORD = "wordpress admin password"


def build_plugin_zip(out: Path) -> Path:
    """The zip ``make wordpress-plugin`` builds, from the same script."""
    spec = importlib.util.spec_from_file_location(
        "paradarum_wordpress_build", REPO / "integrations" / "wordpress" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.build(out))


def _mariadb(*sql: str) -> subprocess.CompletedProcess[str]:
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    return subprocess.run(
        [client, "-h", MARIADB[0], "-P", str(MARIADB[1]), "-u", "root", "--batch", "-e", *sql],
        capture_output=True,
        text=True,
        timeout=30,
    )


def wordpress_problem() -> str | None:
    """Why WordPress cannot be run here, or None when it can."""
    if shutil.which("php") is None:
        return "php is not installed (apt-get install -y php-cli php-mysql php-curl)"
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.lower()
    for module, package in (("mysqli", "php-mysql"), ("curl", "php-curl")):
        if module not in modules.split():
            return f"PHP has no {module} (apt-get install -y {package})"
    if not (WORDPRESS / "wp-load.php").exists():
        return f"WordPress is not installed at {WORDPRESS} (apt-get install -y wordpress)"
    if shutil.which("mariadb") is None and shutil.which("mysql") is None:
        return "the MariaDB client is not installed (apt-get install -y mariadb-client)"
    try:
        answered = _mariadb("SELECT 1").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        answered = False
    if not answered:
        return "MariaDB does not answer on 127.0.0.1:3306 as root without a password"
    return None


def require_wordpress() -> None:
    problem = wordpress_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; it is required when CI=true")
        pytest.skip(problem)


@contextlib.contextmanager
def mariadb_database() -> Iterator[str]:
    """A database of its own on the shared MariaDB, dropped afterwards."""
    name = f"paradarum_wp_{uuid.uuid4().hex[:12]}"
    created = _mariadb(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        _mariadb(f"DROP DATABASE IF EXISTS `{name}`")


# What php -S runs for every request: files as they are, anything else through
# WordPress's front controller (pretty permalinks, as Apache's rewrite rules would).
ROUTER = """<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/__ready') {
    // What tests/cache.py asks through Varnish to know it is up.
    echo "ready\n";
    return true;
}
$file = __DIR__ . $path;
if ($path !== '/' && file_exists($file)) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = __DIR__ . '/index.php';
require __DIR__ . '/index.php';
"""

WP_CONFIG = """<?php
define( 'DB_NAME', '{db}' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '{db_host}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = 'wp_';
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', __DIR__ . '/debug.log' );
// No network beyond this machine: the API runs on loopback.
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'WP_ACCESSIBLE_HOSTS', '127.0.0.1' );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
// The tests run WP-Cron's events themselves (the site's hostname resolves nowhere).
define( 'DISABLE_WP_CRON', true );
define( 'FS_METHOD', 'direct' );
if ( file_exists( __DIR__ . '/paradarum-constants.php' ) ) {{
    require __DIR__ . '/paradarum-constants.php';
}}
if ( ! defined( 'ABSPATH' ) ) {{
    define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""

# Mail goes nowhere (there is no sendmail): WordPress mails on install and comments.
NO_MAIL = "<?php\nadd_filter( 'pre_wp_mail', '__return_false' );\n"


@dataclass
class WordPress:
    """One WordPress site: files in ``root``, served by ``php -S`` on ``origin_port``,
    visited through the cache at ``url`` (``http://<host>:<cache port>``)."""

    root: Path
    host: str
    url: str
    origin_port: int
    server: Any = None

    @property
    def debug_log(self) -> Path:
        return self.root / "debug.log"

    def php(self, code: str, *, check: bool = True) -> Any:
        """Run ``code`` inside WordPress, as a request to the site would (its shutdown
        hooks included); returns what it printed as JSON, if anything."""
        script = self.root / f"run-{uuid.uuid4().hex[:8]}.php"
        parts = self.url.split("://", 1)[1]
        script.write_text(
            "<?php\n"
            f"$_SERVER['HTTP_HOST'] = {json.dumps(parts)};\n"
            "$_SERVER['REQUEST_URI'] = '/';\n"
            "$_SERVER['SERVER_NAME'] = " + json.dumps(self.host) + ";\n"
            "$_SERVER['REQUEST_METHOD'] = 'GET';\n"
            f"require {json.dumps(str(self.root / 'wp-load.php'))};\n" + textwrap.dedent(code)
        )
        try:
            done = subprocess.run(
                ["php", "-d", "display_errors=stderr", "-d", "error_reporting=-1", str(script)],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=self.root,
            )
        finally:
            script.unlink()
        if check:
            assert done.returncode == 0, self.errors() or done.stdout + done.stderr
        out = done.stdout.strip()
        return json.loads(out) if out else None

    def set_plugin(self, *, api_url: str | None, api_key: str | None) -> None:
        """The plugin's stored settings, as the settings page saves them."""
        self.php(
            f"""
            update_option( 'paradarum_settings', array(
                'api_url' => {json.dumps(api_url or "")},
                'api_key' => {json.dumps(api_key or "")},
            ) );
            delete_option( 'paradarum_notice' );
            """
        )

    def define_constants(self, **constants: str) -> None:
        """Constants in wp-config.php (``PARADARUM_API_KEY``...); none: removes them."""
        path = self.root / "paradarum-constants.php"
        if not constants:
            path.unlink(missing_ok=True)
            return
        lines = [f"define( {json.dumps(k)}, {json.dumps(v)} );" for k, v in constants.items()]
        path.write_text("<?php\n" + "\n".join(lines) + "\n")

    def notice(self) -> str | None:
        return self.php(
            "$n = get_option( 'paradarum_notice' );"
            " echo wp_json_encode( is_array( $n ) ? $n['message'] : null );"
        )

    def insert_post(self, **fields: Any) -> dict[str, Any]:
        """``wp_insert_post()`` with ``fields`` (written by the admin unless they say
        otherwise); returns the post's id and URL."""
        fields.setdefault("post_author", 1)
        return dict(
            self.php(
                f"""
                $id = wp_insert_post( json_decode( {json.dumps(json.dumps(fields))}, true ), true );
                if ( is_wp_error( $id ) ) {{
                    fwrite( STDERR, $id->get_error_message() );
                    exit( 1 );
                }}
                echo wp_json_encode( array( 'id' => $id, 'url' => get_permalink( $id ) ) );
                """
            )
        )

    def update_post(self, post_id: int, **fields: Any) -> dict[str, Any]:
        """``wp_update_post()``, as the editor's save does."""
        return dict(
            self.php(
                f"""
                $fields = json_decode( {json.dumps(json.dumps(fields))}, true );
                $fields['ID'] = {int(post_id)};
                $id = wp_update_post( $fields, true );
                if ( is_wp_error( $id ) ) {{
                    fwrite( STDERR, $id->get_error_message() );
                    exit( 1 );
                }}
                $post = get_post( $id );
                echo wp_json_encode( array(
                    'id' => $id, 'url' => get_permalink( $id ),
                    'title' => $post->post_title, 'status' => $post->post_status,
                ) );
                """
            )
        )

    def errors(self) -> str:
        """The last errors in WordPress's debug log (not PHP 8.2's deprecations of
        WordPress 6.1's own code)."""
        if not self.debug_log.exists():
            return ""
        lines = self.debug_log.read_text(errors="replace").splitlines()
        return "\n".join([line for line in lines if "PHP Deprecated" not in line][-20:])

    def plugin_warnings(self) -> list[str]:
        """PHP warnings, notices and deprecations raised in the plugin's files."""
        if not self.debug_log.exists():
            return []
        lines = self.debug_log.read_text(errors="replace").splitlines()
        return [line for line in lines if "/plugins/paradarum/" in line]


def salts() -> str:
    names = ["AUTH", "SECURE_AUTH", "LOGGED_IN", "NONCE"]
    lines = []
    for name in names:
        for suffix in ("KEY", "SALT"):
            lines.append(f"define( '{name}_{suffix}', '{secrets.token_hex(32)}' );")
    return "\n".join(lines)


def prepare_wordpress(root: Path, *, db: str, plugin_zip: Path | None) -> None:
    """A copy of Debian's WordPress with a wp-config.php of its own (Debian's reads
    /etc/wordpress/config-<host>.php), and the plugin unpacked from its zip (unless
    None: the test uploads it)."""
    shutil.copytree(WORDPRESS, root, symlinks=True)
    (root / "wp-config.php").write_text(
        WP_CONFIG.format(db=db, db_host=f"{MARIADB[0]}:{MARIADB[1]}", salts=salts())
    )
    (root / "router.php").write_text(ROUTER)
    if plugin_zip is not None:
        with zipfile.ZipFile(plugin_zip) as archive:
            archive.extractall(root / "wp-content" / "plugins")
    mu_plugins = root / "wp-content" / "mu-plugins"
    mu_plugins.mkdir(exist_ok=True)
    (mu_plugins / "test-no-mail.php").write_text(NO_MAIL)


def install(site: WordPress, title: str, *, activate: bool = True) -> None:
    """``wp_install()``, pretty permalinks, and the plugin activated (if told)."""
    script = f"""
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        $result = wp_install( {json.dumps(title)}, {json.dumps(ADMIN_USER)},
            'admin@{site.host}', true, '', {json.dumps(ADMIN_PASSWORD)} );
        update_option( 'siteurl', {json.dumps(site.url)} );
        update_option( 'home', {json.dumps(site.url)} );
        update_option( 'permalink_structure', '/%year%/%monthnum%/%postname%/' );
        update_option( 'posts_per_page', 2 );
        $activated = {"true" if activate else "false"}
            ? activate_plugin( 'paradarum/paradarum.php' ) : null;
        if ( is_wp_error( $activated ) ) {{
            fwrite( STDERR, $activated->get_error_message() );
            exit( 1 );
        }}
        echo wp_json_encode( array( 'user' => $result['user_id'] ) );
    """
    # wp-load.php redirects to the installer while WordPress is not installed:
    # WP_INSTALLING tells it not to.
    path = site.root / "install-site.php"
    host = site.url.split("://", 1)[1]
    path.write_text(
        "<?php\n"
        f"$_SERVER['HTTP_HOST'] = {json.dumps(host)};\n"
        "$_SERVER['REQUEST_URI'] = '/';\n"
        "define( 'WP_INSTALLING', true );\n"
        f"require {json.dumps(str(site.root / 'wp-load.php'))};\n" + textwrap.dedent(script)
    )
    done = subprocess.run(
        ["php", str(path)], capture_output=True, text=True, timeout=180, cwd=site.root
    )
    path.unlink()
    assert done.returncode == 0, done.stdout + done.stderr


# The site's hostname resolves nowhere here: the plugin's background request (which sends
# the queued purges) goes straight to PHP's server. Its timeout is longer than the
# plugin's own (0.01 s) so that a busy test machine does not lose it; the request answers
# at once anyway, before it calls Paradarum.
BACKGROUND = """<?php
add_filter( 'paradarum_background_request', function ( $request ) {
    $path = (string) wp_parse_url( $request['url'], PHP_URL_PATH );
    $request['url'] = 'http://127.0.0.1:{port}' . $path;
    $request['args']['timeout'] = 10;
    return $request;
} );
"""


def start_php(site: WordPress, log_path: Path) -> None:
    mu_plugins = site.root / "wp-content" / "mu-plugins"
    (mu_plugins / "test-background.php").write_text(
        BACKGROUND.replace("{port}", str(site.origin_port))
    )
    env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
    site.server = start_process(
        ["php", "-S", f"127.0.0.1:{site.origin_port}", "-t", str(site.root), "router.php"],
        env=env,
        log_path=log_path,
        base_url=f"http://127.0.0.1:{site.origin_port}",
        ready_path="/__ready",
        cwd=site.root,
    )


def wait_for(condition: Any, *, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.1)


__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "WordPress",
    "build_plugin_zip",
    "free_port",
    "install",
    "mariadb_database",
    "prepare_wordpress",
    "require_wordpress",
    "start_php",
    "wait_for",
]
