// The /docs page's one script (a file, not inline, for the Content-Security-Policy): Swagger UI over
// the service's own /openapi.json, from files the Worker serves itself, so it works offline.
window.addEventListener("load", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: false,
  });
});
