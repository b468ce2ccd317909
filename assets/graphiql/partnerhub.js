// partnerhub's GraphiQL start-up (ours, not vendored): mounts GraphiQL on #graphiql with the
// sample query and the header example. Loaded after React, ReactDOM and GraphiQL (UMD globals).
(function () {
  'use strict';

  var SAMPLE_QUERY = [
    '# Welcome to partnerhub.',
    '# 1. Headers tab (below): replace the',
    '#    <paste a token ...> placeholder with a',
    '#    token printed by `partnerhub serve --demo`.',
    '# 2. Run with the play button (Ctrl-Enter).',
    '# 3. The book icon (top left) opens the Docs.',
    '# Without a token the schema still loads, but',
    '# data fields answer UNAUTHENTICATED.',
    '',
    '{',
    '  viewer {',
    '    tenantKind',
    '    roles',
    '  }',
    '  customers(first: 10) {',
    '    totalCount',
    '    nodes {',
    '      companyName',
    '    }',
    '  }',
    '}',
    ''
  ].join('\n');

  var SAMPLE_HEADERS = JSON.stringify(
    { Authorization: 'Bearer <paste a token from the demo banner>' },
    null,
    2
  );

  // Both endpoints are resolved against the page's own address (the page is /graphql), so the page
  // also works behind a reverse proxy that mounts the server under a path prefix.
  var endpoint = new URL('graphql', window.location.href);
  var socket = new URL('graphql/ws', window.location.href);
  socket.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  // GraphiQL opens the WebSocket only when a subscription runs (graphql-ws connects lazily), so
  // queries and mutations over HTTP work whether or not /graphql/ws answers.
  var httpFetcher = GraphiQL.createFetcher({
    url: endpoint.pathname,
    subscriptionUrl: socket.href
  });
  // The header example is not a token: while it is left as it is, it is not sent (the server would
  // refuse it with 401, and GraphiQL's schema fetch, which needs no token, would fail with it).
  var fetcher = function (params, options) {
    if (options && options.headers) {
      var headers = {};
      Object.keys(options.headers).forEach(function (name) {
        var value = options.headers[name];
        var placeholder = name.toLowerCase() === 'authorization' && typeof value === 'string' && value.indexOf('<paste') !== -1;
        if (!placeholder) headers[name] = value;
      });
      options = Object.assign({}, options, { headers: headers });
    }
    return httpFetcher(params, options);
  };

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: SAMPLE_QUERY,
      defaultHeaders: SAMPLE_HEADERS,
      defaultEditorToolsVisibility: 'headers',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false
    })
  );
})();
