<?php
/**
 * Removes everything the plugin stored when it is deleted.
 *
 * @package Paradarum
 */

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

require_once __DIR__ . '/includes/class-paradarum-options.php';

foreach ( Paradarum_Options::all_options() as $paradarum_option ) {
	delete_option( $paradarum_option );
}
wp_unschedule_hook( 'paradarum_retry_purge' );
wp_unschedule_hook( 'paradarum_send_queue' );

global $wpdb;
// Per-user "Test connection" results and messages (transients named after the user),
// and URLs still queued for the background request.
$wpdb->query( // phpcs:ignore WordPress.DB.DirectDatabaseQuery
	$wpdb->prepare(
		"DELETE FROM {$wpdb->options} WHERE option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s",
		$wpdb->esc_like( '_transient_paradarum_' ) . '%',
		$wpdb->esc_like( '_transient_timeout_paradarum_' ) . '%',
		$wpdb->esc_like( 'paradarum_queue_' ) . '%'
	)
);
