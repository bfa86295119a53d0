<?php
/**
 * Which URLs show a post: the post itself and every page that lists it.
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Builds the list of URLs to purge when a post or its comments change.
 */
class Paradarum_Urls {

	/**
	 * How many pages of each paginated list are purged (page 1 and the next ones):
	 * a new post shifts every page, but the first ones are those visitors read.
	 */
	const PAGES = 3;

	/**
	 * Whether changes to this post show on the public site.
	 *
	 * @param WP_Post $post The post.
	 * @return bool
	 */
	public static function is_public( $post ) {
		if ( ! $post instanceof WP_Post ) {
			return false;
		}
		if ( wp_is_post_revision( $post ) || wp_is_post_autosave( $post ) ) {
			return false;
		}
		return is_post_type_viewable( $post->post_type );
	}

	/**
	 * The post's URL and the pages that list it.
	 *
	 * @param WP_Post $post The post, as it is (or as it was, before an update).
	 * @return string[]
	 */
	public static function for_post( $post ) {
		$urls = array();
		$link = get_permalink( $post );
		if ( is_string( $link ) && '' !== $link ) {
			$urls[] = $link;
		}
		if ( post_type_supports( $post->post_type, 'comments' ) ) {
			$urls[] = get_post_comments_feed_link( $post->ID );
		}

		// Home, the posts page, and the site's feeds.
		$urls = array_merge( $urls, self::paginated( home_url( '/' ) ) );
		if ( 'page' === get_option( 'show_on_front' ) && (int) get_option( 'page_for_posts' ) > 0 ) {
			$urls = array_merge( $urls, self::paginated( get_permalink( (int) get_option( 'page_for_posts' ) ) ) );
		}
		foreach ( array( 'rss2', 'atom', 'rdf', 'rss', 'comments_rss2' ) as $feed ) {
			$urls[] = get_feed_link( $feed );
		}

		// The post type's archive.
		$archive = get_post_type_archive_link( $post->post_type );
		if ( is_string( $archive ) && 'post' !== $post->post_type ) {
			$urls   = array_merge( $urls, self::paginated( $archive ) );
			$urls[] = get_post_type_archive_feed_link( $post->post_type );
		}

		// Its terms' archives and feeds (categories, tags, custom taxonomies).
		foreach ( get_object_taxonomies( $post->post_type, 'objects' ) as $taxonomy ) {
			if ( ! $taxonomy->public || ! $taxonomy->publicly_queryable ) {
				continue;
			}
			$terms = get_the_terms( $post, $taxonomy->name );
			if ( ! is_array( $terms ) ) {
				continue;
			}
			foreach ( $terms as $term ) {
				$term_link = get_term_link( $term );
				if ( is_string( $term_link ) ) {
					$urls   = array_merge( $urls, self::paginated( $term_link ) );
					$urls[] = get_term_feed_link( $term->term_id, $taxonomy->name );
				}
			}
		}

		// The author's archive and feed.
		if ( post_type_supports( $post->post_type, 'author' ) && (int) $post->post_author > 0 ) {
			$urls   = array_merge( $urls, self::paginated( get_author_posts_url( (int) $post->post_author ) ) );
			$urls[] = get_author_feed_link( (int) $post->post_author );
		}

		// The date archives.
		if ( 'post' === $post->post_type ) {
			$time   = strtotime( $post->post_date );
			$year   = (int) gmdate( 'Y', $time );
			$month  = (int) gmdate( 'm', $time );
			$day    = (int) gmdate( 'd', $time );
			$urls[] = get_year_link( $year );
			$urls[] = get_month_link( $year, $month );
			$urls[] = get_day_link( $year, $month, $day );
		}

		// Its attachments' pages and files.
		foreach ( get_attached_media( '', $post->ID ) as $attachment ) {
			$urls[] = get_attachment_link( $attachment->ID );
			$file   = wp_get_attachment_url( $attachment->ID );
			if ( is_string( $file ) ) {
				$urls[] = $file;
			}
		}

		/**
		 * Filters the URLs purged when a post changes.
		 *
		 * @param string[] $urls The URLs.
		 * @param WP_Post  $post The post.
		 */
		$urls = apply_filters( 'paradarum_post_urls', $urls, $post );
		return self::clean( $urls );
	}

	/**
	 * What a new or changed comment shows on: the post and the comment feeds.
	 *
	 * @param WP_Post $post The post the comment is on.
	 * @return string[]
	 */
	public static function for_comments( $post ) {
		$urls = array(
			get_permalink( $post ),
			get_post_comments_feed_link( $post->ID ),
			get_feed_link( 'comments_rss2' ),
			get_feed_link( 'comments_atom' ),
		);
		/** This filter is documented in includes/class-paradarum-urls.php */
		$urls = apply_filters( 'paradarum_comment_urls', $urls, $post );
		return self::clean( $urls );
	}

	/**
	 * A list's first page and the next ones (`/page/2/`, or `?paged=2` without pretty links).
	 *
	 * @param string|false $url The list's first page.
	 * @return string[]
	 */
	public static function paginated( $url ) {
		if ( ! is_string( $url ) || '' === $url ) {
			return array();
		}
		$urls = array( $url );
		global $wp_rewrite;
		for ( $page = 2; $page <= self::PAGES; $page++ ) {
			if ( $wp_rewrite instanceof WP_Rewrite && $wp_rewrite->using_permalinks() && false === strpos( $url, '?' ) ) {
				$urls[] = trailingslashit( $url ) . user_trailingslashit( $wp_rewrite->pagination_base . '/' . $page, 'paged' );
			} else {
				$urls[] = add_query_arg( 'paged', $page, $url );
			}
		}
		return $urls;
	}

	/**
	 * Absolute http(s) URLs on this site's host, once each.
	 *
	 * @param array $urls Candidates.
	 * @return string[]
	 */
	public static function clean( $urls ) {
		$host  = Paradarum_Options::site_host();
		$clean = array();
		foreach ( (array) $urls as $url ) {
			if ( ! is_string( $url ) || '' === $url ) {
				continue;
			}
			$parts = wp_parse_url( $url );
			if ( ! is_array( $parts ) || empty( $parts['host'] ) || empty( $parts['scheme'] ) ) {
				continue;
			}
			// Files on another host (a media CDN, say) are not this site's to purge.
			if ( ! in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true ) || strtolower( $parts['host'] ) !== $host ) {
				continue;
			}
			$clean[ $url ] = true;
		}
		return array_keys( $clean );
	}
}
