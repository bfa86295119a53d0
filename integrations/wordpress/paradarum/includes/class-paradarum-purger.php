<?php
/**
 * Purges what a change shows on: collected while WordPress handles the request, sent
 * once when it is done.
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
 * URLs are gathered in a set during the request and sent once, in batches of the API's
 * limit, after WordPress has answered (under PHP-FPM the editor does not wait for it).
 * A busy or unreachable API is retried a bounded number of times, honouring
 * Retry-After; what still fails becomes an admin notice. Nothing here can break a save:
 * every failure is caught and reported.
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
	 * Sends what this request collected. Runs at shutdown, after the answer was sent
	 * where the server allows it (PHP-FPM, LiteSpeed).
	 */
	public function flush() {
		$urls          = $this->pending();
		$this->pending = array();
		if ( ! $urls ) {
			return;
		}
		if ( function_exists( 'fastcgi_finish_request' ) ) {
			fastcgi_finish_request();
		} elseif ( function_exists( 'litespeed_finish_request' ) ) {
			litespeed_finish_request();
		}
		ignore_user_abort( true );
		try {
			foreach ( array_chunk( $urls, Paradarum_Api::MAX_URLS ) as $batch ) {
				$this->send( $batch, 0 );
			}
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
