<?php
/**
 * The Paradarum API, through the WordPress HTTP API.
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * One answer from Paradarum, or why there was none, in words an administrator can act on.
 */
class Paradarum_Result {

	/**
	 * Whether the request succeeded.
	 *
	 * @var bool
	 */
	public $ok = false;

	/**
	 * The HTTP status (0 when Paradarum could not be reached).
	 *
	 * @var int
	 */
	public $status = 0;

	/**
	 * The envelope's data.
	 *
	 * @var mixed
	 */
	public $data = null;

	/**
	 * What to tell the administrator when it failed.
	 *
	 * @var string
	 */
	public $message = '';

	/**
	 * Whether trying again later may work (the API is down, busy or rate limiting).
	 *
	 * @var bool
	 */
	public $retryable = false;

	/**
	 * Seconds Paradarum asked us to wait (Retry-After), or 0.
	 *
	 * @var int
	 */
	public $retry_after = 0;
}

/**
 * Calls the Paradarum API with the configured key.
 */
class Paradarum_Api {

	/**
	 * The most URLs one purge request may carry (the API's limit).
	 */
	const MAX_URLS = 100;

	/**
	 * Seconds to wait for Paradarum to answer.
	 */
	const TIMEOUT = 10;

	/**
	 * What this key may purge, and whether that covers this site's hostname.
	 *
	 * @return Paradarum_Result
	 */
	public static function scope() {
		$path = '/api/account/purge/scope?hostname=' . rawurlencode( Paradarum_Options::site_host() );
		return self::request( 'GET', $path );
	}

	/**
	 * Purges up to MAX_URLS URLs.
	 *
	 * @param string[] $urls Absolute URLs of this site.
	 * @return Paradarum_Result
	 */
	public static function purge_urls( array $urls ) {
		return self::request( 'POST', '/api/account/purge', array( 'urls' => array_values( $urls ) ) );
	}

	/**
	 * Purges the objects carrying these tags, within the key's zones.
	 *
	 * @param string[] $tags Cache tags.
	 * @return Paradarum_Result
	 */
	public static function purge_tags( array $tags ) {
		return self::request( 'POST', '/api/account/purge', array( 'tags' => array_values( $tags ) ) );
	}

	/**
	 * Purges everything cached for the key's zones.
	 *
	 * @return Paradarum_Result
	 */
	public static function purge_everything() {
		return self::request( 'POST', '/api/account/purge', array( 'everything' => true ) );
	}

	/**
	 * Sends one request and turns the answer into a Paradarum_Result.
	 *
	 * @param string     $method HTTP method.
	 * @param string     $path   Path under the API's address, with its query.
	 * @param array|null $body   JSON body.
	 * @return Paradarum_Result
	 */
	public static function request( $method, $path, $body = null ) {
		$result = new Paradarum_Result();
		$base   = Paradarum_Options::api_url();
		$key    = Paradarum_Options::api_key();
		if ( '' === $base || '' === $key ) {
			$result->message = __( 'Paradarum is not set up yet: enter the API address and a key on the Settings → Paradarum page.', 'paradarum' );
			return $result;
		}
		$args = array(
			'method'      => $method,
			'timeout'     => self::TIMEOUT,
			'redirection' => 0,
			'user-agent'  => 'Paradarum-WordPress/' . PARADARUM_PLUGIN_VERSION . '; ' . home_url( '/' ),
			'headers'     => array(
				// A header, never the URL: a key in a URL ends up in logs.
				'Authorization' => 'Bearer ' . $key,
				'Accept'        => 'application/json',
			),
		);
		if ( null !== $body ) {
			$args['headers']['Content-Type'] = 'application/json';
			$args['body']                    = wp_json_encode( $body );
		}
		$response = wp_remote_request( $base . $path, $args );

		if ( is_wp_error( $response ) ) {
			$result->retryable = true;
			$result->message   = sprintf(
				/* translators: 1: the API address, 2: the error. */
				__( 'Paradarum could not be reached at %1$s (%2$s). Check the API address, or try again later.', 'paradarum' ),
				$base,
				$response->get_error_message()
			);
			return $result;
		}

		$result->status = (int) wp_remote_retrieve_response_code( $response );
		$envelope       = json_decode( (string) wp_remote_retrieve_body( $response ), true );
		$api_message    = is_array( $envelope ) && isset( $envelope['message'] ) && is_string( $envelope['message'] ) ? $envelope['message'] : '';
		if ( is_array( $envelope ) && array_key_exists( 'data', $envelope ) ) {
			$result->data = $envelope['data'];
		}
		$retry_after = wp_remote_retrieve_header( $response, 'retry-after' );
		if ( is_string( $retry_after ) && ctype_digit( trim( $retry_after ) ) ) {
			$result->retry_after = (int) trim( $retry_after );
		}

		if ( $result->status >= 200 && $result->status < 300 ) {
			if ( ! is_array( $envelope ) || empty( $envelope['succeeded'] ) ) {
				$result->message = sprintf(
					/* translators: %s: the API address. */
					__( '%s did not answer as a Paradarum service does. Check the API address.', 'paradarum' ),
					$base
				);
				return $result;
			}
			$result->ok = true;
			return $result;
		}

		$prefix = Paradarum_Options::key_prefix();
		switch ( $result->status ) {
			case 401:
				$result->message = sprintf(
					/* translators: %s: the key's prefix, such as pdm_AbCd. */
					__( 'Paradarum refused the API key %s…: it has been revoked or has expired, or it was mistyped. Create a new purge-only key restricted to this site\'s zone in the Paradarum panel and put it in wp-config.php (PARADARUM_API_KEY) or on the settings page.', 'paradarum' ),
					$prefix
				);
				break;
			case 403:
				if ( is_array( $envelope ) && isset( $envelope['errors']['urls'] ) ) {
					// The URLs' host is outside the key's zones (the API names it; it is this site's).
					$result->message = sprintf(
						/* translators: 1: the key's prefix, 2: this site's hostname. */
						__( 'The API key %1$s… may not purge %2$s: none of its zones covers this site. Add %2$s as a zone of your Paradarum account and verify it, then use a key that includes that zone.', 'paradarum' ),
						$prefix,
						Paradarum_Options::site_host()
					);
				} else {
					// A key used from an address it does not allow, or beyond its permission.
					$result->message = sprintf(
						/* translators: 1: the key's prefix, 2: Paradarum's explanation. */
						__( 'Paradarum refused the API key %1$s…: %2$s', 'paradarum' ),
						$prefix,
						$api_message
					);
				}
				break;
			case 429:
			case 502:
			case 503:
			case 504:
				$result->retryable = true;
				$result->message   = sprintf(
					/* translators: 1: the HTTP status, 2: Paradarum's explanation. */
					__( 'Paradarum is busy or unavailable (HTTP %1$d): %2$s', 'paradarum' ),
					$result->status,
					'' !== $api_message ? $api_message : __( 'try again later.', 'paradarum' )
				);
				break;
			default:
				$result->retryable = $result->status >= 500;
				$result->message   = sprintf(
					/* translators: 1: the HTTP status, 2: the API address, 3: Paradarum's explanation. */
					__( 'Paradarum answered HTTP %1$d at %2$s: %3$s', 'paradarum' ),
					$result->status,
					$base,
					'' !== $api_message ? $api_message : __( 'check the API address.', 'paradarum' )
				);
		}
		return $result;
	}
}
