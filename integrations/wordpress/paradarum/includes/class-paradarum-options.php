<?php
/**
 * Where the plugin keeps its settings, and where the key comes from.
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The plugin's settings: the API address and the key.
 *
 * The key is read from the PARADARUM_API_KEY constant when wp-config.php defines it
 * (recommended: it then never reaches the database, backups or the settings form), else
 * from the option, which the settings page never shows back (only its prefix).
 */
class Paradarum_Options {

	const OPTION = 'paradarum_settings';
	const NOTICE = 'paradarum_notice';
	const RESULT = 'paradarum_connection';

	/**
	 * Every option and transient the plugin writes (uninstall.php deletes them).
	 *
	 * @return string[]
	 */
	public static function all_options() {
		return array( self::OPTION, self::NOTICE );
	}

	/**
	 * The stored settings, with defaults.
	 *
	 * @return array{api_url: string, api_key: string}
	 */
	public static function stored() {
		$stored = get_option( self::OPTION, array() );
		if ( ! is_array( $stored ) ) {
			$stored = array();
		}
		return array(
			'api_url' => isset( $stored['api_url'] ) && is_string( $stored['api_url'] ) ? $stored['api_url'] : '',
			'api_key' => isset( $stored['api_key'] ) && is_string( $stored['api_key'] ) ? $stored['api_key'] : '',
		);
	}

	/**
	 * Whether wp-config.php defines the key.
	 *
	 * @return bool
	 */
	public static function key_from_constant() {
		return defined( 'PARADARUM_API_KEY' ) && is_string( PARADARUM_API_KEY ) && '' !== PARADARUM_API_KEY;
	}

	/**
	 * Whether wp-config.php defines the API address.
	 *
	 * @return bool
	 */
	public static function url_from_constant() {
		return defined( 'PARADARUM_API_URL' ) && is_string( PARADARUM_API_URL ) && '' !== PARADARUM_API_URL;
	}

	/**
	 * The key to send, or '' when none is configured.
	 *
	 * @return string
	 */
	public static function api_key() {
		if ( self::key_from_constant() ) {
			return trim( (string) PARADARUM_API_KEY );
		}
		return self::stored()['api_key'];
	}

	/**
	 * The API's base address without a trailing slash, or '' when none is configured.
	 *
	 * @return string
	 */
	public static function api_url() {
		$url = self::url_from_constant() ? (string) PARADARUM_API_URL : self::stored()['api_url'];
		return untrailingslashit( trim( $url ) );
	}

	/**
	 * The first 8 characters of the key (`pdm_` and 4 more): what may be shown.
	 *
	 * @return string
	 */
	public static function key_prefix() {
		$key = self::api_key();
		return '' === $key ? '' : substr( $key, 0, 8 );
	}

	/**
	 * Whether a string has the shape of a Paradarum key: `pdm_` and 28 letters or digits.
	 *
	 * @param string $key The candidate.
	 * @return bool
	 */
	public static function looks_like_key( $key ) {
		return 1 === preg_match( '/^pdm_[A-Za-z0-9]{28}$/', $key );
	}

	/**
	 * This site's hostname, as its visitors' browsers send it (without the port).
	 *
	 * @return string
	 */
	public static function site_host() {
		$host = wp_parse_url( home_url( '/' ), PHP_URL_HOST );
		return is_string( $host ) ? strtolower( $host ) : '';
	}

	/**
	 * The cache tag this site puts on every page it serves, so that "Purge everything"
	 * can reach this site's pages alone when the key may purge other sites too.
	 *
	 * @return string
	 */
	public static function site_tag() {
		return 'wp-site-' . substr( md5( home_url( '/' ) ), 0, 12 );
	}

	/**
	 * Records a failure for the admin notice (the latest one wins).
	 *
	 * @param string $message What went wrong and what to do, for people.
	 */
	public static function record_failure( $message ) {
		update_option(
			self::NOTICE,
			array(
				'message' => $message,
				'time'    => time(),
			),
			false
		);
	}

	/**
	 * Forgets the failure notice (after a purge that worked, or when dismissed).
	 */
	public static function clear_failure() {
		if ( false !== get_option( self::NOTICE, false ) ) {
			delete_option( self::NOTICE );
		}
	}
}
