/* Starts Swagger UI on /api/docs (templates/api_docs.html) with the app's own OpenAPI document. */
(function () {
  "use strict";
  var box = document.getElementById("swagger-ui");
  if (!box || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({ url: box.getAttribute("data-openapi"), dom_id: "#swagger-ui", deepLinking: true });
})();
