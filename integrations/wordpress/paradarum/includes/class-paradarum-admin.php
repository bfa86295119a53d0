<?php
/**
 * The settings page, "Test connection", "Purge everything" and the failure notice.
 *
 * @package Paradarum
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Everything an administrator sees of the plugin.
 */
class Paradarum_Admin {

	const PAGE       = 'paradarum';
	const CAPABILITY = 'manage_options';

	/**
	 * The single instance.
	 *
	 * @var Paradarum_Admin|null
	 */
	private static $instance = null;

	/**
	 * The single instance.
	 *
	 * @return Paradarum_Admin
	 */
	public static function instance() {
		if ( null === self::$instance ) {
			self::$instance = new self();
		}
		return self::$instance;
	}

	/**
	 * Hooks into the admin.
	 */
	public function register() {
		add_action( 'admin_menu', array( $this, 'menu' ) );
		add_action( 'admin_init', array( $this, 'settings' ) );
		add_action( 'admin_notices', array( $this, 'notices' ) );
		add_action( 'enqueue_block_editor_assets', array( $this, 'editor_notice' ) );
		add_action( 'admin_post_paradarum_test', array( $this, 'test_connection' ) );
		add_action( 'admin_post_paradarum_purge_everything', array( $this, 'purge_everything' ) );
		add_action( 'admin_post_paradarum_dismiss', array( $this, 'dismiss' ) );
		add_action( 'admin_bar_menu', array( $this, 'admin_bar' ), 100 );
		add_filter( 'plugin_action_links_' . plugin_basename( PARADARUM_PLUGIN_FILE ), array( $this, 'action_links' ) );
	}

	/**
	 * The settings page's address.
	 *
	 * @param array $args Query arguments to add.
	 * @return string
	 */
	public static function page_url( $args = array() ) {
		return add_query_arg( array_merge( array( 'page' => self::PAGE ), $args ), admin_url( 'options-general.php' ) );
	}

	/**
	 * Settings → Paradarum.
	 */
	public function menu() {
		add_options_page(
			__( 'Paradarum', 'paradarum' ),
			__( 'Paradarum', 'paradarum' ),
			self::CAPABILITY,
			self::PAGE,
			array( $this, 'render' )
		);
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param string[] $links The plugin's links.
	 * @return string[]
	 */
	public function action_links( $links ) {
		$links[] = '<a href="' . esc_url( self::page_url() ) . '">' . esc_html__( 'Settings', 'paradarum' ) . '</a>';
		return $links;
	}

	/**
	 * The settings, through the Settings API (options.php checks the nonce and the
	 * capability before anything is saved).
	 */
	public function settings() {
		register_setting(
			'paradarum',
			Paradarum_Options::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( $this, 'sanitize' ),
				'default'           => array(
					'api_url' => '',
					'api_key' => '',
				),
				'show_in_rest'      => false,
			)
		);
		add_settings_section( 'paradarum_connection', __( 'Connection', 'paradarum' ), array( $this, 'section_intro' ), self::PAGE );
		add_settings_field(
			'paradarum_api_url',
			__( 'API address', 'paradarum' ),
			array( $this, 'field_url' ),
			self::PAGE,
			'paradarum_connection',
			array( 'label_for' => 'paradarum_api_url' )
		);
		add_settings_field(
			'paradarum_api_key',
			__( 'API key', 'paradarum' ),
			array( $this, 'field_key' ),
			self::PAGE,
			'paradarum_connection',
			array( 'label_for' => 'paradarum_api_key' )
		);
	}

	/**
	 * Checks what the form sent. An empty key field keeps the stored key: the form never
	 * holds it, so saving the address alone must not erase it.
	 *
	 * @param mixed $input The submitted values.
	 * @return array{api_url: string, api_key: string}
	 */
	public function sanitize( $input ) {
		$current = Paradarum_Options::stored();
		if ( ! is_array( $input ) ) {
			return $current;
		}
		$clean = $current;

		if ( isset( $input['api_url'] ) && is_string( $input['api_url'] ) ) {
			$url = trim( $input['api_url'] );
			if ( '' === $url ) {
				$clean['api_url'] = '';
			} elseif ( wp_http_validate_url( $url ) || preg_match( '#^https?://[^/?\#]+(/[^?\#]*)?$#i', $url ) ) {
				$clean['api_url'] = untrailingslashit( esc_url_raw( $url, array( 'http', 'https' ) ) );
			} else {
				add_settings_error( Paradarum_Options::OPTION, 'api_url', __( 'The API address must be an http:// or https:// address, such as https://paradarum.example.', 'paradarum' ) );
			}
		}

		if ( ! empty( $input['forget_key'] ) ) {
			$clean['api_key'] = '';
		} elseif ( isset( $input['api_key'] ) && is_string( $input['api_key'] ) ) {
			$key = trim( $input['api_key'] );
			if ( '' !== $key ) {
				if ( Paradarum_Options::looks_like_key( $key ) ) {
					$clean['api_key'] = $key;
				} else {
					// Never repeat what was typed: it may be a real key with a typo.
					add_settings_error( Paradarum_Options::OPTION, 'api_key', __( 'That is not a Paradarum API key: a key starts with pdm_ and has 32 letters and digits. The stored key was kept.', 'paradarum' ) );
				}
			}
		}
		if ( $clean !== $current ) {
			delete_transient( $this->result_key() );
		}
		return $clean;
	}

	/**
	 * The section's introduction.
	 */
	public function section_intro() {
		echo '<p>' . esc_html__( 'Paradarum purges this site\'s pages from its cache when you publish, update, unpublish or trash content, and when comments are approved. Use a purge-only key restricted to this site\'s zone: it can do nothing else.', 'paradarum' ) . '</p>';
	}

	/**
	 * The API address field.
	 */
	public function field_url() {
		if ( Paradarum_Options::url_from_constant() ) {
			echo '<code>' . esc_html( Paradarum_Options::api_url() ) . '</code>';
			echo '<p class="description">' . esc_html__( 'Set by the PARADARUM_API_URL constant in wp-config.php.', 'paradarum' ) . '</p>';
			return;
		}
		printf(
			'<input type="url" id="paradarum_api_url" name="%1$s[api_url]" value="%2$s" class="regular-text code" placeholder="https://paradarum.example" />',
			esc_attr( Paradarum_Options::OPTION ),
			esc_attr( Paradarum_Options::stored()['api_url'] )
		);
		echo '<p class="description">' . esc_html__( 'The address of your Paradarum service.', 'paradarum' ) . '</p>';
	}

	/**
	 * The key field: never filled in, only the stored key's prefix is shown.
	 */
	public function field_key() {
		$constant_advice = __( 'Recommended: define the key in wp-config.php, where it stays out of the database and its backups:', 'paradarum' );
		$constant_line   = "define( 'PARADARUM_API_KEY', 'pdm_…' );";
		if ( Paradarum_Options::key_from_constant() ) {
			printf(
				'<p id="paradarum_api_key"><code>%s…</code></p>',
				esc_html( Paradarum_Options::key_prefix() )
			);
			echo '<p class="description">' . esc_html__( 'Set by the PARADARUM_API_KEY constant in wp-config.php (recommended).', 'paradarum' ) . '</p>';
			return;
		}
		$prefix = Paradarum_Options::key_prefix();
		printf(
			'<input type="password" id="paradarum_api_key" name="%1$s[api_key]" value="" class="regular-text code" autocomplete="off" spellcheck="false" placeholder="%2$s" />',
			esc_attr( Paradarum_Options::OPTION ),
			esc_attr( '' === $prefix ? 'pdm_…' : __( 'Leave empty to keep the stored key', 'paradarum' ) )
		);
		if ( '' !== $prefix ) {
			echo '<p class="description">';
			printf(
				/* translators: %s: the key's prefix, such as pdm_AbCd. */
				esc_html__( 'A key starting with %s is stored. Paste another one to replace it.', 'paradarum' ),
				'<code>' . esc_html( $prefix ) . '…</code>'
			);
			echo '</p><p><label><input type="checkbox" name="' . esc_attr( Paradarum_Options::OPTION ) . '[forget_key]" value="1" /> ';
			esc_html_e( 'Forget the stored key', 'paradarum' );
			echo '</label></p>';
		}
		echo '<p class="description">' . esc_html( $constant_advice ) . '<br /><code>' . esc_html( $constant_line ) . '</code></p>';
	}

	/**
	 * Where the last connection test's result waits for the page (per user).
	 *
	 * @return string
	 */
	private function result_key() {
		return Paradarum_Options::RESULT . '_' . get_current_user_id();
	}

	/**
	 * Stops unless the current user may manage the plugin and the nonce is right.
	 *
	 * @param string $action The nonce's action.
	 */
	private function guard( $action ) {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage Paradarum.', 'paradarum' ), '', array( 'response' => 403 ) );
		}
		check_admin_referer( $action );
	}

	/**
	 * "Test connection": asks Paradarum what the key may purge.
	 */
	public function test_connection() {
		$this->guard( 'paradarum_test' );
		$result = Paradarum_Api::scope();
		$report = array(
			'ok'      => $result->ok,
			'message' => $result->message,
			'time'    => time(),
		);
		if ( $result->ok && is_array( $result->data ) ) {
			$data   = $result->data;
			$report = array_merge(
				$report,
				array(
					'prefix'         => isset( $data['keyPrefix'] ) ? (string) $data['keyPrefix'] : '',
					'permissions'    => isset( $data['permissions'] ) ? (string) $data['permissions'] : '',
					'zone_restricted' => ! empty( $data['zoneRestricted'] ),
					'zones'          => isset( $data['zones'] ) && is_array( $data['zones'] ) ? array_map( 'strval', $data['zones'] ) : array(),
					'hostname'       => isset( $data['hostname'] ) ? (string) $data['hostname'] : Paradarum_Options::site_host(),
					'covered'        => ! empty( $data['covered'] ),
				)
			);
		}
		set_transient( $this->result_key(), $report, 10 * MINUTE_IN_SECONDS );
		wp_safe_redirect( self::page_url( array( 'paradarum_tested' => 1 ) ) );
		exit;
	}

	/**
	 * "Purge everything", confirmed on the settings page.
	 *
	 * With a key whose every zone covers this site, everything cached for those zones is
	 * purged. A key that reaches other sites too would purge theirs as well, so then only
	 * what this site tagged as its own is purged (every page it served with the plugin
	 * active), and the notice says so.
	 */
	public function purge_everything() {
		$this->guard( 'paradarum_purge_everything' );
		$scope = Paradarum_Api::scope();
		if ( ! $scope->ok ) {
			$this->done( 'error', $scope->message );
		}
		$data  = is_array( $scope->data ) ? $scope->data : array();
		$zones = isset( $data['zones'] ) && is_array( $data['zones'] ) ? $data['zones'] : array();
		if ( empty( $data['covered'] ) ) {
			$this->done(
				'error',
				sprintf(
					/* translators: 1: the key's prefix, 2: this site's hostname. */
					__( 'The API key %1$s… may not purge %2$s: none of its zones covers this site. Add %2$s as a zone of your Paradarum account and verify it, then use a key that includes that zone.', 'paradarum' ),
					Paradarum_Options::key_prefix(),
					Paradarum_Options::site_host()
				)
			);
		}
		$host = Paradarum_Options::site_host();
		$own  = array_filter(
			$zones,
			function ( $zone ) use ( $host ) {
				return self::covers( (string) $zone, $host );
			}
		);
		if ( count( $own ) === count( $zones ) ) {
			$result  = Paradarum_Api::purge_everything();
			$success = sprintf(
				/* translators: %s: the zones, comma-separated. */
				__( 'Paradarum is purging everything cached for %s.', 'paradarum' ),
				implode( ', ', $zones )
			);
		} else {
			$result  = Paradarum_Api::purge_tags( array( Paradarum_Options::site_tag() ) );
			$success = __( 'Paradarum is purging every page this site served since the plugin was activated. Your key may purge other sites too, so nothing else was purged: restrict the key to this site\'s zone to purge everything, images and other files included.', 'paradarum' );
		}
		if ( $result->ok ) {
			Paradarum_Options::clear_failure();
			$this->done( 'success', $success );
		}
		$this->done( 'error', $result->message );
	}

	/**
	 * Whether a zone covers a hostname: the zone itself, or for `*.example.com` any
	 * name below example.com (Paradarum's rule).
	 *
	 * @param string $zone The zone.
	 * @param string $host The hostname.
	 * @return bool
	 */
	public static function covers( $zone, $host ) {
		if ( 0 !== strpos( $zone, '*.' ) ) {
			return $zone === $host;
		}
		$suffix = substr( $zone, 1 );
		return strlen( $host ) > strlen( $suffix ) && substr( $host, -strlen( $suffix ) ) === $suffix;
	}

	/**
	 * Back to the settings page with a message.
	 *
	 * @param string $kind    success or error.
	 * @param string $message The message.
	 */
	private function done( $kind, $message ) {
		set_transient(
			Paradarum_Options::RESULT . '_done_' . get_current_user_id(),
			array(
				'kind'    => $kind,
				'message' => $message,
			),
			10 * MINUTE_IN_SECONDS
		);
		wp_safe_redirect( self::page_url( array( 'paradarum_done' => 1 ) ) );
		exit;
	}

	/**
	 * Dismisses the failure notice.
	 */
	public function dismiss() {
		$this->guard( 'paradarum_dismiss' );
		Paradarum_Options::clear_failure();
		$back = wp_get_referer();
		wp_safe_redirect( $back ? $back : admin_url() );
		exit;
	}

	/**
	 * The last purge failure, for those who can publish.
	 */
	public function notices() {
		if ( ! current_user_can( 'edit_posts' ) ) {
			return;
		}
		$notice = get_option( Paradarum_Options::NOTICE, false );
		if ( ! is_array( $notice ) || empty( $notice['message'] ) ) {
			return;
		}
		echo '<div class="notice notice-error paradarum-notice"><p><strong>' . esc_html__( 'Paradarum:', 'paradarum' ) . '</strong> ' . esc_html( (string) $notice['message'] ) . '</p>';
		if ( current_user_can( self::CAPABILITY ) ) {
			$dismiss = wp_nonce_url( admin_url( 'admin-post.php?action=paradarum_dismiss' ), 'paradarum_dismiss' );
			echo '<p><a href="' . esc_url( self::page_url() ) . '">' . esc_html__( 'Paradarum settings', 'paradarum' ) . '</a> · <a href="' . esc_url( $dismiss ) . '">' . esc_html__( 'Dismiss', 'paradarum' ) . '</a></p>';
		}
		echo '</div>';
	}

	/**
	 * The same notice in the block editor, which does not show admin notices.
	 */
	public function editor_notice() {
		if ( ! current_user_can( 'edit_posts' ) ) {
			return;
		}
		$notice = get_option( Paradarum_Options::NOTICE, false );
		if ( ! is_array( $notice ) || empty( $notice['message'] ) ) {
			return;
		}
		wp_enqueue_script(
			'paradarum-editor-notice',
			plugins_url( 'assets/editor-notice.js', PARADARUM_PLUGIN_FILE ),
			array( 'wp-data', 'wp-notices' ),
			PARADARUM_PLUGIN_VERSION,
			true
		);
		wp_localize_script(
			'paradarum-editor-notice',
			'paradarumNotice',
			array(
				'message'       => __( 'Paradarum:', 'paradarum' ) . ' ' . (string) $notice['message'],
				'settingsUrl'   => current_user_can( self::CAPABILITY ) ? self::page_url() : '',
				'settingsLabel' => __( 'Paradarum settings', 'paradarum' ),
			)
		);
	}

	/**
	 * "Purge everything" in the admin bar, leading to the confirmation.
	 *
	 * @param WP_Admin_Bar $bar The admin bar.
	 */
	public function admin_bar( $bar ) {
		if ( ! current_user_can( self::CAPABILITY ) || ! $bar instanceof WP_Admin_Bar ) {
			return;
		}
		$bar->add_node(
			array(
				'id'    => 'paradarum',
				'title' => esc_html__( 'Paradarum', 'paradarum' ),
				'href'  => self::page_url(),
			)
		);
		$bar->add_node(
			array(
				'parent' => 'paradarum',
				'id'     => 'paradarum-purge-everything',
				'title'  => esc_html__( 'Purge everything…', 'paradarum' ),
				'href'   => self::page_url( array( 'paradarum_confirm' => 'everything' ) ),
			)
		);
	}

	/**
	 * The settings page.
	 */
	public function render() {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			return;
		}
		echo '<div class="wrap paradarum-settings"><h1>' . esc_html__( 'Paradarum', 'paradarum' ) . '</h1>';

		$done = get_transient( Paradarum_Options::RESULT . '_done_' . get_current_user_id() );
		if ( is_array( $done ) && isset( $_GET['paradarum_done'] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- only shows a stored message.
			delete_transient( Paradarum_Options::RESULT . '_done_' . get_current_user_id() );
			$class = 'success' === $done['kind'] ? 'notice-success' : 'notice-error';
			echo '<div id="paradarum-result" class="notice ' . esc_attr( $class ) . '"><p>' . esc_html( (string) $done['message'] ) . '</p></div>';
		}

		if ( isset( $_GET['paradarum_confirm'] ) && 'everything' === $_GET['paradarum_confirm'] ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- the form below carries the nonce.
			$this->render_confirmation();
		}

		// Settings pages show settings_errors() already (wp-admin/options-head.php).
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( 'paradarum' );
		do_settings_sections( self::PAGE );
		submit_button( __( 'Save settings', 'paradarum' ) );
		echo '</form>';

		echo '<h2>' . esc_html__( 'Test connection', 'paradarum' ) . '</h2>';
		echo '<p>' . esc_html__( 'Asks Paradarum what the key may purge, and whether that includes this site.', 'paradarum' ) . '</p>';
		$this->render_test_result();
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="paradarum_test" />';
		wp_nonce_field( 'paradarum_test' );
		submit_button( __( 'Test connection', 'paradarum' ), 'secondary', 'paradarum-test', false );
		echo '</form>';

		echo '<h2>' . esc_html__( 'Purge everything', 'paradarum' ) . '</h2>';
		echo '<p><a class="button" href="' . esc_url( self::page_url( array( 'paradarum_confirm' => 'everything' ) ) ) . '">' . esc_html__( 'Purge everything…', 'paradarum' ) . '</a></p>';
		echo '</div>';
	}

	/**
	 * "Are you sure?" before purging everything.
	 */
	private function render_confirmation() {
		echo '<div id="paradarum-confirm" class="notice notice-warning"><p><strong>';
		printf(
			/* translators: %s: this site's hostname. */
			esc_html__( 'Purge everything cached for %s?', 'paradarum' ),
			esc_html( Paradarum_Options::site_host() )
		);
		echo '</strong> ' . esc_html__( 'Every visitor\'s next request for each page goes to this server until the cache fills again.', 'paradarum' ) . '</p>';
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '"><p>';
		echo '<input type="hidden" name="action" value="paradarum_purge_everything" />';
		wp_nonce_field( 'paradarum_purge_everything' );
		submit_button( __( 'Yes, purge everything', 'paradarum' ), 'primary', 'paradarum-purge-everything', false );
		echo ' <a class="button" href="' . esc_url( self::page_url() ) . '">' . esc_html__( 'Cancel', 'paradarum' ) . '</a>';
		echo '</p></form></div>';
	}

	/**
	 * The last "Test connection" result.
	 */
	private function render_test_result() {
		$report = get_transient( $this->result_key() );
		if ( ! is_array( $report ) ) {
			return;
		}
		if ( empty( $report['ok'] ) ) {
			echo '<div id="paradarum-test-result" class="notice notice-error inline"><p>' . esc_html( (string) $report['message'] ) . '</p></div>';
			return;
		}
		$covered = ! empty( $report['covered'] );
		echo '<div id="paradarum-test-result" class="notice ' . ( $covered ? 'notice-success' : 'notice-error' ) . ' inline">';
		echo '<p>' . ( $covered ? esc_html__( 'Connected.', 'paradarum' ) : esc_html__( 'Connected, but this key cannot purge this site.', 'paradarum' ) ) . '</p>';
		echo '<table class="widefat striped"><tbody>';
		$rows = array(
			__( 'Key', 'paradarum' )         => '' !== $report['prefix'] ? $report['prefix'] . '…' : __( '(not a key)', 'paradarum' ),
			__( 'Permissions', 'paradarum' ) => 'purge' === $report['permissions']
				? __( 'Purge only (recommended)', 'paradarum' )
				: __( 'Full access: this key can also create keys and manage zones. A purge-only key is safer here.', 'paradarum' ),
			__( 'Zones', 'paradarum' )       => $report['zones']
				? implode( ', ', $report['zones'] ) . ( $report['zone_restricted'] ? '' : ' ' . __( '(every active zone of the account)', 'paradarum' ) )
				: __( 'none active', 'paradarum' ),
			__( 'This site', 'paradarum' )   => $covered
				? sprintf(
					/* translators: %s: this site's hostname. */
					__( '%s is covered by an active zone of this key.', 'paradarum' ),
					$report['hostname']
				)
				: sprintf(
					/* translators: %s: this site's hostname. */
					__( '%s is not covered by any active zone of this key: add it as a zone of your Paradarum account, verify it, and use a key that includes it.', 'paradarum' ),
					$report['hostname']
				),
		);
		foreach ( $rows as $label => $value ) {
			echo '<tr><th scope="row">' . esc_html( $label ) . '</th><td>' . esc_html( $value ) . '</td></tr>';
		}
		echo '</tbody></table>';
		printf(
			'<p class="description">%s</p>',
			esc_html(
				sprintf(
					/* translators: %s: date and time of the test. */
					__( 'Tested %s.', 'paradarum' ),
					wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), (int) $report['time'] )
				)
			)
		);
		echo '</div>';
	}
}
