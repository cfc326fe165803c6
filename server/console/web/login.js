// The login page's script (public, like the page: it holds no data).
"use strict";

const $ = (id) => document.getElementById(id);

function setupLogin() {
  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const response = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("name").value, password: $("password").value }),
      });
      if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
      location.href = "/";
    } catch (e) {
      $("error").textContent = e.message;
    }
  });
}

setupLogin();
