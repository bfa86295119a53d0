<?php
/**
 * Purges what a change shows on: collected while WordPress handles the request, queued
 * when it is done, and sent by a background request so that no save waits for it.
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Collects URLs from the content hooks and sends them to Paradarum at shutdown.
 *
 * One save fires many hooks (transition_post_status, post_updated, save_post...), so
 * URLs are gathered in a set during the request and queued once, at shutdown. Under
 * PHP-FPM and LiteSpeed the response is finished first and the queue is sent right
 * there; under every other server (mod_php, `php -S`, the command line) a non-blocking
 * request to this site's admin-ajax.php sends it, the way WP-Cron spawns itself, and a
 * WP-Cron event a minute later picks up whatever that request missed. Either way the
 * editor never waits for Paradarum. Batches keep to the API's limit; a busy or
 * unreachable API is retried a bounded number of times, honouring Retry-After; what
 * still fails becomes an admin notice. Nothing here can break a save: every failure is
 * caught and reported.
 */
class Paradarum_Purger {

	/**
	 * Attempts in the request itself (the first try included).
	 */
	const INLINE_ATTEMPTS = 2;

	/**
	 * The longest Retry-After honoured by waiting in the request, in seconds; longer
	 * waits go to WP-Cron.
	 */
	const INLINE_WAIT = 5;

	/**
	 * Later attempts through WP-Cron, after those in the request.
	 */
	const CRON_ATTEMPTS = 3;

	/**
	 * The WP-Cron hook of later attempts.
	 */
	const CRON_HOOK = 'paradarum_retry_purge';

	/**
	 * The WP-Cron hook that sends what the background request did not (it was lost, or
	 * this site cannot reach itself).
	 */
	const QUEUE_HOOK = 'paradarum_send_queue';

	/**
	 * The admin-ajax action of the background request.
	 */
	const AJAX_ACTION = 'paradarum_send_queue';

	/**
	 * The prefix of the queue's options: one per request that changed something, so two
	 * saves at once never overwrite each other's URLs.
	 */
	const QUEUE_PREFIX = 'paradarum_queue_';

	/**
	 * The single instance.
	 *
	 * @var Paradarum_Purger|null
	 */
	private static $instance = null;

	/**
	 * URLs to purge at shutdown (as keys, so each goes once).
	 *
	 * @var array<string, true>
	 */
	private $pending = array();

	/**
	 * Whether the shutdown hook is added.
	 *
	 * @var bool
	 */
	private $scheduled = false;

	/**
	 * The single instance.
	 *
	 * @return Paradarum_Purger
	 */
	public static function instance() {
		if ( null === self::$instance ) {
			self::$instance = new self();
		}
		return self::$instance;
	}

	/**
	 * Hooks into content changes.
	 */
	public function register() {
		add_action( 'transition_post_status', array( $this, 'on_transition' ), 10, 3 );
		add_action( 'post_updated', array( $this, 'on_update' ), 10, 3 );
		add_action( 'before_delete_post', array( $this, 'on_delete' ), 10, 1 );
		add_action( 'transition_comment_status', array( $this, 'on_comment_status' ), 10, 3 );
		add_action( 'comment_post', array( $this, 'on_new_comment' ), 10, 2 );
		add_action( 'edit_comment', array( $this, 'on_edit_comment' ), 10, 1 );
		add_action( self::CRON_HOOK, array( $this, 'retry' ), 10, 2 );
		add_action( self::QUEUE_HOOK, array( $this, 'send_queue' ) );
		// The background request carries no cookie: the secret in it is what is checked.
		add_action( 'wp_ajax_nopriv_' . self::AJAX_ACTION, array( $this, 'on_background_request' ) );
		add_action( 'wp_ajax_' . self::AJAX_ACTION, array( $this, 'on_background_request' ) );
		add_action( 'send_headers', array( $this, 'tag_response' ) );
	}

	/**
	 * Publish, unpublish, trash, and updates of a published post.
	 *
	 * @param string  $new_status The status now.
	 * @param string  $old_status The status before.
	 * @param WP_Post $post       The post.
	 */
	public function on_transition( $new_status, $old_status, $post ) {
		if ( ( 'publish' === $new_status || 'publish' === $old_status ) && Paradarum_Urls::is_public( $post ) ) {
			$this->add( Paradarum_Urls::for_post( $post ) );
		}
	}

	/**
	 * An update: the post's former address too (its slug, date or status may change).
	 *
	 * @param int     $post_id     The post's ID.
	 * @param WP_Post $post_after  The post now.
	 * @param WP_Post $post_before The post before.
	 */
	public function on_update( $post_id, $post_after, $post_before ) {
		if ( $post_before instanceof WP_Post && 'publish' === $post_before->post_status && Paradarum_Urls::is_public( $post_before ) ) {
			$this->add( Paradarum_Urls::for_post( $post_before ) );
		}
	}

	/**
	 * A published post deleted without going through the trash.
	 *
	 * @param int $post_id The post's ID.
	 */
	public function on_delete( $post_id ) {
		$post = get_post( $post_id );
		if ( $post instanceof WP_Post && 'publish' === $post->post_status && Paradarum_Urls::is_public( $post ) ) {
			$this->add( Paradarum_Urls::for_post( $post ) );
		}
	}

	/**
	 * A comment approved, or no longer approved.
	 *
	 * @param string     $new_status The status now.
	 * @param string     $old_status The status before.
	 * @param WP_Comment $comment    The comment.
	 */
	public function on_comment_status( $new_status, $old_status, $comment ) {
		if ( 'approved' === $new_status || 'approved' === $old_status ) {
			$this->add_comment_post( $comment );
		}
	}

	/**
	 * A comment posted and approved at once.
	 *
	 * @param int        $comment_id The comment's ID.
	 * @param int|string $approved   1 when approved.
	 */
	public function on_new_comment( $comment_id, $approved ) {
		if ( 1 === (int) $approved ) {
			$this->add_comment_post( get_comment( $comment_id ) );
		}
	}

	/**
	 * An approved comment edited.
	 *
	 * @param int $comment_id The comment's ID.
	 */
	public function on_edit_comment( $comment_id ) {
		$comment = get_comment( $comment_id );
		if ( $comment instanceof WP_Comment && '1' === (string) $comment->comment_approved ) {
			$this->add_comment_post( $comment );
		}
	}

	/**
	 * Queues the pages a comment shows on.
	 *
	 * @param WP_Comment|null $comment The comment.
	 */
	private function add_comment_post( $comment ) {
		if ( ! $comment instanceof WP_Comment ) {
			return;
		}
		$post = get_post( (int) $comment->comment_post_ID );
		if ( $post instanceof WP_Post && 'publish' === $post->post_status && Paradarum_Urls::is_public( $post ) ) {
			$this->add( Paradarum_Urls::for_comments( $post ) );
		}
	}

	/**
	 * Puts the site's cache tag on the pages it serves (see Paradarum_Options::site_tag).
	 */
	public function tag_response() {
		if ( ! headers_sent() && ! is_admin() ) {
			header( 'X-Cache-Tags: ' . Paradarum_Options::site_tag(), false );
		}
	}

	/**
	 * Adds URLs to this request's purge, sent once at shutdown.
	 *
	 * @param string[] $urls URLs of this site.
	 */
	public function add( array $urls ) {
		foreach ( $urls as $url ) {
			$this->pending[ $url ] = true;
		}
		if ( $this->pending && ! $this->scheduled ) {
			$this->scheduled = true;
			add_action( 'shutdown', array( $this, 'flush' ), 100 );
		}
	}

	/**
	 * The URLs collected so far in this request.
	 *
	 * @return string[]
	 */
	public function pending() {
		return array_keys( $this->pending );
	}

	/**
	 * Queues what this request collected and has it sent without keeping the visitor
	 * (the editor) waiting. Runs at shutdown.
	 */
	public function flush() {
		$urls          = $this->pending();
		$this->pending = array();
		if ( ! $urls ) {
			return;
		}
		try {
			$id = self::enqueue( $urls );
			ignore_user_abort( true );
			if ( function_exists( 'fastcgi_finish_request' ) ) {
				fastcgi_finish_request();
				$this->send_queue();
				return;
			}
			if ( function_exists( 'litespeed_finish_request' ) ) {
				litespeed_finish_request();
				$this->send_queue();
				return;
			}
			if ( ! wp_next_scheduled( self::QUEUE_HOOK ) ) {
				wp_schedule_single_event( time() + MINUTE_IN_SECONDS, self::QUEUE_HOOK );
			}
			$this->spawn( $id );
		} catch ( Throwable $error ) {
			// A purge must never turn a save into an error page.
			Paradarum_Options::record_failure(
				sprintf(
					/* translators: %s: the error. */
					__( 'Paradarum could not purge the changed pages: %s', 'paradarum' ),
					$error->getMessage()
				)
			);
		}
	}

	/**
	 * Stores URLs for the background request, in an option of their own (not autoloaded).
	 *
	 * @param string[] $urls URLs of this site.
	 * @return string The entry's id.
	 */
	public static function enqueue( array $urls ) {
		$id = bin2hex( random_bytes( 16 ) );
		add_option( self::QUEUE_PREFIX . $id, array_values( $urls ), '', 'no' );
		return $id;
	}

	/**
	 * The secret the background request proves it comes from this site with: only the
	 * site knows its salts.
	 *
	 * @param string $id The queue entry's id.
	 * @return string
	 */
	public static function token( $id ) {
		return hash_hmac( 'sha256', 'paradarum-queue|' . $id, wp_salt( 'nonce' ) );
	}

	/**
	 * Starts the background request and returns at once (it is not waited for).
	 *
	 * @param string $id The queue entry's id.
	 */
	private function spawn( $id ) {
		$request = array(
			'url'  => admin_url( 'admin-ajax.php' ),
			'args' => array(
				// As spawn_cron() does: hand the request over and do not wait for an answer.
				'timeout'   => 0.01,
				'blocking'  => false,
				/** This filter is documented in wp-includes/class-wp-http-streams.php */
				'sslverify' => apply_filters( 'https_local_ssl_verify', false ),
				'body'      => array(
					'action' => self::AJAX_ACTION,
					'id'     => $id,
					'token'  => self::token( $id ),
				),
			),
		);
		/**
		 * Filters the background request that sends the queued purges (its address and
		 * wp_remote_post() arguments), as cron_request does for WP-Cron: for a site that
		 * reaches itself at another address than its public one.
		 *
		 * @param array $request { @type string $url, @type array $args }
		 */
		$request = apply_filters( 'paradarum_background_request', $request );
		wp_remote_post( $request['url'], $request['args'] );
	}

	/**
	 * The background request: answers at once, then sends every queued entry.
	 */
	public function on_background_request() {
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked by its own secret.
		$id    = isset( $_POST['id'] ) && is_string( $_POST['id'] ) ? sanitize_key( wp_unslash( $_POST['id'] ) ) : '';
		$token = isset( $_POST['token'] ) && is_string( $_POST['token'] ) ? sanitize_key( wp_unslash( $_POST['token'] ) ) : '';
		// phpcs:enable
		if ( '' === $id || ! hash_equals( self::token( $id ), $token ) ) {
			wp_send_json_error( null, 403 );
		}
		ignore_user_abort( true );
		if ( function_exists( 'fastcgi_finish_request' ) ) {
			fastcgi_finish_request();
		} elseif ( function_exists( 'litespeed_finish_request' ) ) {
			litespeed_finish_request();
		} elseif ( ! headers_sent() ) {
			// An empty, complete answer now: whoever started this request need not wait.
			while ( ob_get_level() > 0 ) {
				ob_end_clean();
			}
			status_header( 202 );
			header( 'Content-Length: 0' );
			header( 'Connection: close' );
			flush();
		}
		$this->send_queue();
		exit;
	}

	/**
	 * Sends every queued entry, in batches of the API's limit. Each entry is claimed by
	 * deleting its option, so two background requests never send the same URLs twice.
	 */
	public function send_queue() {
		global $wpdb;
		$names = $wpdb->get_col( // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$wpdb->prepare(
				"SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s ORDER BY option_id",
				$wpdb->esc_like( self::QUEUE_PREFIX ) . '%'
			)
		);
		$urls = array();
		foreach ( (array) $names as $name ) {
			$entry = get_option( $name, array() );
			if ( delete_option( $name ) && is_array( $entry ) ) {
				foreach ( $entry as $url ) {
					if ( is_string( $url ) ) {
						$urls[ $url ] = true;
					}
				}
			}
		}
		if ( ! $urls ) {
			return;
		}
		try {
			foreach ( array_chunk( array_keys( $urls ), Paradarum_Api::MAX_URLS ) as $batch ) {
				$this->send( $batch, 0 );
			}
		} catch ( Throwable $error ) {
			Paradarum_Options::record_failure(
				sprintf(
					/* translators: %s: the error. */
					__( 'Paradarum could not purge the changed pages: %s', 'paradarum' ),
					$error->getMessage()
				)
			);
		}
	}

	/**
	 * A later attempt (WP-Cron).
	 *
	 * @param string[] $urls    The batch.
	 * @param int      $attempt How many WP-Cron attempts came before this one.
	 */
	public function retry( $urls, $attempt ) {
		if ( is_array( $urls ) && $urls ) {
			$this->send( array_slice( array_values( array_filter( $urls, 'is_string' ) ), 0, Paradarum_Api::MAX_URLS ), (int) $attempt + 1 );
		}
	}

	/**
	 * Sends one batch, waits and tries again in the request while the wait is short, and
	 * hands longer waits to WP-Cron, a bounded number of times.
	 *
	 * @param string[] $urls       At most Paradarum_Api::MAX_URLS URLs.
	 * @param int      $cron_round 0 in the request, then 1, 2... in WP-Cron.
	 * @return Paradarum_Result
	 */
	public function send( array $urls, $cron_round ) {
		$attempt = 0;
		while ( true ) {
			++$attempt;
			$result = Paradarum_Api::purge_urls( $urls );
			if ( $result->ok ) {
				Paradarum_Options::clear_failure();
				return $result;
			}
			if ( ! $result->retryable ) {
				break;
			}
			$wait = max( 1, $result->retry_after );
			if ( $attempt < self::INLINE_ATTEMPTS && $wait <= self::INLINE_WAIT ) {
				sleep( $wait );
				continue;
			}
			if ( $cron_round < self::CRON_ATTEMPTS ) {
				$delay   = max( $wait, 60 * ( $cron_round + 1 ) );
				$minutes = (int) ceil( $delay / 60 );
				wp_schedule_single_event( time() + $delay, self::CRON_HOOK, array( $urls, $cron_round ) );
				Paradarum_Options::record_failure(
					sprintf(
						/* translators: 1: what went wrong, 2: minutes until the next attempt. */
						_n(
							'Paradarum could not purge the changed pages yet: %1$s It will try again in about %2$d minute.',
							'Paradarum could not purge the changed pages yet: %1$s It will try again in about %2$d minutes.',
							$minutes,
							'paradarum'
						),
						$result->message,
						$minutes
					)
				);
				return $result;
			}
			break;
		}
		Paradarum_Options::record_failure(
			sprintf(
				/* translators: %s: what went wrong. */
				__( 'Paradarum did not purge the changed pages: %s Visitors may see the previous version until the cache expires.', 'paradarum' ),
				$result->message
			)
		);
		return $result;
	}
}
