<?php
/**
 * Plugin Name:       Paradarum Cache Purge
 * Description:       Purges this site's pages from the Paradarum cache when content changes, with a purge-only key restricted to the site's zone.
 * Version:           1.0.0
 * Requires at least: 6.0
 * Requires PHP:      7.4
 * Author:            Paradarum
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       paradarum
 * Domain Path:       /languages
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'PARADARUM_PLUGIN_VERSION', '1.0.0' );
define( 'PARADARUM_PLUGIN_FILE', __FILE__ );

require_once __DIR__ . '/includes/class-paradarum-options.php';
require_once __DIR__ . '/includes/class-paradarum-api.php';
require_once __DIR__ . '/includes/class-paradarum-urls.php';
require_once __DIR__ . '/includes/class-paradarum-purger.php';
require_once __DIR__ . '/includes/class-paradarum-admin.php';

/**
 * Loads the translations.
 */
function paradarum_load_textdomain() {
	load_plugin_textdomain( 'paradarum', false, dirname( plugin_basename( __FILE__ ) ) . '/languages' );
}
add_action( 'init', 'paradarum_load_textdomain' );

Paradarum_Purger::instance()->register();
Paradarum_Admin::instance()->register();
