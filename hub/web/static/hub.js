// A little progressive enhancement: copy buttons and the chart period picker. Pages work without it.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) return;
  var text = "value" in source ? source.value : source.textContent;
  var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else if (source.select) {
    source.select(); document.execCommand("copy"); done();
  }
});
document.addEventListener("change", function (event) {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
});
