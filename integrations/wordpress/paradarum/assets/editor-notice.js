/**
 * The block editor does not show admin notices: show the plugin's failure notice there.
 */
( function ( wp, notice ) {
	if ( ! wp || ! wp.data || ! notice || ! notice.message ) {
		return;
	}
	wp.data.dispatch( 'core/notices' ).createWarningNotice( notice.message, {
		id: 'paradarum-notice',
		isDismissible: true,
		actions: notice.settingsUrl
			? [ { label: notice.settingsLabel, url: notice.settingsUrl } ]
			: [],
	} );
} )( window.wp, window.paradarumNotice );
