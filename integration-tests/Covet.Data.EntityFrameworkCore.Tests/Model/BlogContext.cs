using Microsoft.EntityFrameworkCore;

namespace Covet.Data.EntityFrameworkCore.Tests.Model;

public class Blog
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public int Rating { get; set; }
    public List<Post> Posts { get; set; } = [];
}

public class Post
{
    public int Id { get; set; }
    public int BlogId { get; set; }
    public Blog Blog { get; set; } = null!;
    public string Title { get; set; } = "";
    public int Views { get; set; }
}

/// <summary>The provider-neutral model every row of the matrix runs on.</summary>
public class BlogContext(DbContextOptions<BlogContext> options) : DbContext(options)
{
    public DbSet<Blog> Blogs => Set<Blog>();
    public DbSet<Post> Posts => Set<Post>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Blog>(b =>
        {
            b.Property(x => x.Name).HasMaxLength(200).IsRequired();
            b.HasIndex(x => x.Name);
            b.HasMany(x => x.Posts).WithOne(p => p.Blog).HasForeignKey(p => p.BlogId);
        });
        modelBuilder.Entity<Post>(p => p.Property(x => x.Title).HasMaxLength(200).IsRequired());
    }
}

/// <summary>Shape of <c>SqlQuery</c> results.</summary>
public sealed class BlogSummary
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public int Rating { get; set; }
}
