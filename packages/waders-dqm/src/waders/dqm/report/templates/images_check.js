window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  broken.forEach(function (img) { img.classList.add("broken"); });
  document.body.dataset.images = String(images.length);
  document.body.dataset.imagesOk = broken.length === 0 ? "true" : "false";
});
