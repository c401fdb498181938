// GraphiQL from local files: the endpoint and the subscription URL of this server, and the
// Authorization header preset — with the console's token when the console opened this tab (it
// is read from the opening window, same origin only, and never put in a URL).
(function () {
  var token = null;
  try {
    if (window.opener && window.opener.location.origin === location.origin && window.opener.pledgeflowToken) {
      token = window.opener.pledgeflowToken();
    }
  } catch (e) {
    token = null;
  }
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  var auth = { Authorization: 'Bearer ' + (token || '') };
  var fetcher = GraphiQL.createFetcher({
    url: location.origin + '/graphql',
    subscriptionUrl: wsUrl,
    wsConnectionParams: token ? auth : {},
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultHeaders: JSON.stringify(auth, null, 2),
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: 'headers',
  }));
})();
